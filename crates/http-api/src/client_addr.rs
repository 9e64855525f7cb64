//! The client's address behind trusted reverse proxies (an ingress, a load balancer).
//!
//! The TCP peer is the client unless it is one of the configured trusted proxy networks. Only
//! then are `Forwarded` (RFC 7239) / `X-Forwarded-For` read, right to left: each hop a trusted
//! proxy added is skipped while it is itself trusted, and the right-most untrusted address is
//! the client. Everything left of it was written by the client and is never believed.
//!
//! Rules worth knowing:
//! - no trusted networks (the default): the headers are never read;
//! - an entry that is not an address (`unknown`, an obfuscated `_node`, garbage, a `Forwarded`
//!   element without `for=`) stops the walk at the last trusted address reached (the peer when
//!   it is the right-most entry): nobody gets a budget of their own by sending garbage, they
//!   share the proxy's;
//! - a chain of trusted addresses only gives its left-most one (a request made inside the
//!   trusted network);
//! - IPv4-mapped IPv6 addresses (`::ffff:192.0.2.1`) are the IPv4 address, everywhere.
//!
//! Which header: only the one the proxy writes may be read, because a proxy passes the other
//! through from clients, who could then choose their own address. The default is
//! [`ForwardedHeader::XForwardedFor`], what ingress-nginx and the cloud load balancers write;
//! `server.forwarded_header` picks `Forwarded` (RFC 7239) or [`ForwardedHeader::Auto`]
//! (`Forwarded` when present, else `X-Forwarded-For`) for proxies that write those.

use std::fmt;
use std::future::{Ready, ready};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

use actix_web::dev::Payload;
use actix_web::http::header::HeaderMap;
use actix_web::{FromRequest, HttpMessage, HttpRequest};
use ipnet::IpNet;

use crate::error::ApiError;

/// Which forwarding header a trusted proxy writes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ForwardedHeader {
    /// `Forwarded` when the request has one, else `X-Forwarded-For`.
    Auto,
    /// Only `Forwarded` (RFC 7239).
    Forwarded,
    /// Only `X-Forwarded-For`: what nearly every proxy writes, so the safe default.
    #[default]
    XForwardedFor,
}

/// A trusted-proxy list that does not parse; names the bad entry.
#[derive(Debug, thiserror::Error)]
#[error("{entry:?} is not an address or a CIDR network (e.g. 10.0.0.0/8, 2001:db8::/32)")]
pub struct InvalidProxy {
    /// The entry as written.
    pub entry: String,
}

/// The trusted proxy networks and which header they write.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ProxyRules {
    trusted: Vec<IpNet>,
    header: ForwardedHeader,
}

impl fmt::Debug for ProxyRules {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nets: Vec<String> = self.trusted.iter().map(ToString::to_string).collect();
        f.debug_struct("ProxyRules")
            .field("trusted", &nets)
            .field("header", &self.header)
            .finish()
    }
}

impl FromStr for ProxyRules {
    type Err = InvalidProxy;

    /// Comma-separated CIDR networks or bare addresses (a bare address is its /32 or /128).
    fn from_str(list: &str) -> Result<Self, InvalidProxy> {
        let trusted = list
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(|entry| {
                entry
                    .parse::<IpNet>()
                    .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                    .map(|net| match net {
                        // A mapped network is its IPv4 one: addresses are compared canonical.
                        IpNet::V6(v6) if v6.prefix_len() >= 96 => {
                            match v6.addr().to_ipv4_mapped() {
                                Some(v4) => ipnet::Ipv4Net::new(v4, v6.prefix_len() - 96)
                                    .map_or(net, IpNet::V4),
                                None => net,
                            }
                        }
                        other => other,
                    })
                    .map(|net| net.trunc())
                    .map_err(|_| InvalidProxy {
                        entry: entry.to_owned(),
                    })
            })
            .collect::<Result<_, _>>()?;
        Ok(ProxyRules {
            trusted,
            header: ForwardedHeader::default(),
        })
    }
}

impl ProxyRules {
    /// No trusted proxy: the peer is always the client.
    pub fn none() -> Self {
        Self::default()
    }

    /// The same networks, reading `header`.
    pub fn with_header(mut self, header: ForwardedHeader) -> Self {
        self.header = header;
        self
    }

    /// Whether any proxy is trusted (else headers are never read).
    pub fn is_empty(&self) -> bool {
        self.trusted.is_empty()
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.trusted.iter().any(|net| net.contains(&ip))
    }

    /// The client of a request that came from `peer` with `headers`.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let values = |name: &str| {
            headers
                .get_all(name)
                .map(|v| v.to_str().unwrap_or("\u{0}"))
                .collect::<Vec<_>>()
        };
        // Read only what the walk may use: nothing at all unless the peer is trusted.
        let peer = peer.to_canonical();
        if !self.trusts(peer) {
            return peer;
        }
        let forwarded = values("forwarded");
        let use_forwarded = match self.header {
            ForwardedHeader::Forwarded => true,
            ForwardedHeader::XForwardedFor => false,
            ForwardedHeader::Auto => !forwarded.is_empty(),
        };
        if use_forwarded {
            self.walk(peer, forwarded_hops(&forwarded))
        } else {
            self.walk(peer, xff_hops(&values("x-forwarded-for")))
        }
    }

    /// Walks `hops` (left to right as written, one `None` per entry that is not an address)
    /// from the right, starting at the trusted `peer`.
    fn walk(&self, peer: IpAddr, hops: Vec<Option<IpAddr>>) -> IpAddr {
        let mut last = peer;
        for hop in hops.into_iter().rev() {
            let Some(ip) = hop.map(|ip| ip.to_canonical()) else {
                return last;
            };
            if !self.trusts(ip) {
                return ip;
            }
            last = ip;
        }
        last
    }
}

/// The hops of `X-Forwarded-For` values (several headers are one list, in order).
fn xff_hops(values: &[&str]) -> Vec<Option<IpAddr>> {
    values
        .iter()
        .flat_map(|v| v.split(','))
        .map(|entry| node(entry.trim()))
        .collect()
}

/// The `for=` of each element of `Forwarded` values (RFC 7239 §4: elements separated by
/// commas, pairs by semicolons, values tokens or quoted strings). An element without exactly
/// one `for=` is an entry that is not an address.
fn forwarded_hops(values: &[&str]) -> Vec<Option<IpAddr>> {
    let mut hops = Vec::new();
    for value in values {
        for element in split_unquoted(value, b',') {
            // Whitespace between commas (`a, , b`) is allowed by the list syntax.
            if element.trim().is_empty() {
                continue;
            }
            let (mut found, mut fors, mut malformed) = (None, 0, false);
            for pair in split_unquoted(element, b';') {
                match pair.split_once('=') {
                    Some((name, value)) if name.trim().eq_ignore_ascii_case("for") => {
                        fors += 1;
                        found = unquote(value.trim()).and_then(|v| node(&v));
                    }
                    Some(_) => {}
                    None => malformed |= !pair.trim().is_empty(),
                }
            }
            hops.push(found.filter(|_| fors == 1 && !malformed));
        }
    }
    hops
}

/// Splits `s` at each `sep` outside a quoted string.
fn split_unquoted(s: &str, sep: u8) -> Vec<&str> {
    let bytes = s.as_bytes();
    let (mut parts, mut start, mut quoted, mut escaped) = (Vec::new(), 0, false, false);
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            _ if escaped => escaped = false,
            b'\\' if quoted => escaped = true,
            b'"' => quoted = !quoted,
            _ if b == sep && !quoted => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

/// A token as is, or a quoted string without its quotes and escapes; `None` if unterminated.
fn unquote(value: &str) -> Option<String> {
    let Some(inner) = value.strip_prefix('"') else {
        return Some(value.to_owned());
    };
    let inner = inner.strip_suffix('"')?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        out.push(if c == '\\' { chars.next()? } else { c });
    }
    Some(out)
}

/// A port as RFC 7239 writes it: digits, or an obfuscated `_port`.
fn port(p: &str) -> bool {
    p.parse::<u16>().is_ok()
        || p.strip_prefix('_').is_some_and(|rest| {
            !rest.is_empty()
                && rest
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        })
}

/// One hop's address: `192.0.2.1`, `192.0.2.1:4711`, `[2001:db8::1]`, `[2001:db8::1]:4711`
/// or a bare `2001:db8::1`; `None` for anything else (`unknown`, `_hidden`, garbage).
fn node(s: &str) -> Option<IpAddr> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(sock) = s.parse::<SocketAddr>() {
        return Some(sock.ip());
    }
    if let Some(rest) = s.strip_prefix('[') {
        let (v6, after) = rest.split_once(']')?;
        let ip = v6.parse::<Ipv6Addr>().ok()?;
        return (after.is_empty() || after.strip_prefix(':').is_some_and(port))
            .then_some(IpAddr::V6(ip));
    }
    let (host, p) = s.rsplit_once(':')?;
    port(p)
        .then(|| host.parse::<Ipv4Addr>().ok())
        .flatten()
        .map(IpAddr::V4)
}

/// The client address of a request, as the request-context middleware worked it out (once per
/// request, before the per-address limit). `Option<ClientAddr>` in a handler is `None` for a
/// request that has no peer address (in-process tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

impl FromRequest for ClientAddr {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(
            req.extensions()
                .get::<ClientAddr>()
                .copied()
                .ok_or_else(|| ApiError::Internal("the request has no client address".into())),
        )
    }
}

#[cfg(test)]
mod tests {
    use actix_web::http::header::{HeaderName, HeaderValue};

    use super::*;

    fn rules(list: &str) -> ProxyRules {
        list.parse().unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_static(name),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    fn client(rules: &ProxyRules, peer: &str, pairs: &[(&'static str, &str)]) -> IpAddr {
        rules.client(ip(peer), &headers(pairs))
    }

    #[test]
    fn without_trusted_proxies_the_headers_are_never_read() {
        let none = ProxyRules::none();
        assert!(none.is_empty());
        let spoofed = [
            ("x-forwarded-for", "203.0.113.9"),
            ("forwarded", "for=203.0.113.9"),
        ];
        assert_eq!(client(&none, "10.0.0.5", &spoofed), ip("10.0.0.5"));
    }

    #[test]
    fn a_spoofed_header_from_an_untrusted_peer_changes_nothing() {
        let r = rules("10.0.0.0/8");
        for header in ["x-forwarded-for", "forwarded"] {
            let value = if header == "forwarded" {
                "for=203.0.113.9"
            } else {
                "203.0.113.9"
            };
            assert_eq!(
                client(&r, "198.51.100.7", &[(header, value)]),
                ip("198.51.100.7")
            );
        }
    }

    #[test]
    fn a_trusted_peer_gives_the_right_most_untrusted_hop() {
        let r = rules("10.0.0.0/8, 192.168.1.1");
        // The client claims 1.1.1.1; the ingress appended its real address, then an inner
        // trusted proxy appended the ingress's.
        let chain = [("x-forwarded-for", "1.1.1.1, 203.0.113.9, 10.1.2.3")];
        assert_eq!(client(&r, "10.0.0.5", &chain), ip("203.0.113.9"));
        assert_eq!(client(&r, "192.168.1.1", &chain), ip("203.0.113.9"));
        // One hop.
        let one = [("x-forwarded-for", "203.0.113.9")];
        assert_eq!(client(&r, "10.0.0.5", &one), ip("203.0.113.9"));
        // Several headers are one list, in order.
        let split = [
            ("x-forwarded-for", "1.1.1.1"),
            ("x-forwarded-for", "203.0.113.9, 10.1.2.3"),
        ];
        assert_eq!(client(&r, "10.0.0.5", &split), ip("203.0.113.9"));
    }

    #[test]
    fn a_trusted_peer_without_forwarding_headers_is_the_client() {
        let r = rules("10.0.0.0/8");
        assert_eq!(client(&r, "10.0.0.5", &[]), ip("10.0.0.5"));
        assert_eq!(
            client(&r, "10.0.0.5", &[("x-forwarded-for", "")]),
            ip("10.0.0.5")
        );
    }

    #[test]
    fn an_all_trusted_chain_gives_its_left_most_hop() {
        let r = rules("10.0.0.0/8");
        let chain = [("x-forwarded-for", "10.9.9.9, 10.1.1.1")];
        assert_eq!(client(&r, "10.0.0.5", &chain), ip("10.9.9.9"));
    }

    #[test]
    fn a_malformed_entry_stops_the_walk_at_the_last_trusted_address() {
        let r = rules("10.0.0.0/8");
        for bad in [
            "garbage",
            "unknown",
            "_hidden",
            "1.2.3.4.5",
            "300.1.1.1",
            "[::1",
            "",
            "1.2.3.4:x",
        ] {
            // The right-most entry is bad: the peer is all we know.
            let h = format!("203.0.113.9, {bad}");
            assert_eq!(
                client(&r, "10.0.0.5", &[("x-forwarded-for", &h)]),
                ip("10.0.0.5"),
                "{bad:?}"
            );
            // Behind a trusted hop: that hop.
            let h = format!("203.0.113.9, {bad}, 10.1.1.1");
            assert_eq!(
                client(&r, "10.0.0.5", &[("x-forwarded-for", &h)]),
                ip("10.1.1.1"),
                "{bad:?}"
            );
        }
        // Garbage left of the right-most untrusted hop is never looked at.
        let h = [("x-forwarded-for", "garbage, 203.0.113.9")];
        assert_eq!(client(&r, "10.0.0.5", &h), ip("203.0.113.9"));
        // A header that is not text is malformed as a whole.
        let mut map = HeaderMap::new();
        map.insert(
            HeaderName::from_static("x-forwarded-for"),
            HeaderValue::from_bytes(b"203.0.113.9\xff").unwrap(),
        );
        assert_eq!(r.client(ip("10.0.0.5"), &map), ip("10.0.0.5"));
    }

    #[test]
    fn forwarded_elements_ports_quotes_and_obfuscation_are_understood() {
        let r = rules("10.0.0.0/8").with_header(ForwardedHeader::Forwarded);
        let f = |value: &str| client(&r, "10.0.0.5", &[("forwarded", value)]);
        assert_eq!(
            f("for=192.0.2.60;proto=http;by=203.0.113.43"),
            ip("192.0.2.60")
        );
        assert_eq!(
            f(r#"for="[2001:db8:cafe::17]:4711""#),
            ip("2001:db8:cafe::17")
        );
        assert_eq!(f(r#"For="[2001:db8:cafe::17]""#), ip("2001:db8:cafe::17"));
        assert_eq!(f(r#"for="192.0.2.43:47011""#), ip("192.0.2.43"));
        assert_eq!(f(r#"for="192.0.2.43:_hidden""#), ip("192.0.2.43"));
        // Several elements: right to left, skipping trusted ones.
        assert_eq!(f("for=192.0.2.43, for=198.51.100.17"), ip("198.51.100.17"));
        assert_eq!(
            f("for=192.0.2.43, for=10.1.1.1;by=10.0.0.5"),
            ip("192.0.2.43")
        );
        // Several headers are one list.
        let two = [
            ("forwarded", "for=192.0.2.43"),
            ("forwarded", "for=10.1.1.1"),
        ];
        assert_eq!(client(&r, "10.0.0.5", &two), ip("192.0.2.43"));
        // A quoted comma or semicolon does not split.
        assert_eq!(
            f(r#"for=192.0.2.43;ext="a,b;c", for=10.1.1.1"#),
            ip("192.0.2.43")
        );
        // unknown, obfuscated, missing or doubled `for`, unterminated quotes: stop there.
        assert_eq!(f("for=192.0.2.43, for=unknown"), ip("10.0.0.5"));
        assert_eq!(f("for=192.0.2.43, for=_gazonk"), ip("10.0.0.5"));
        assert_eq!(f("for=192.0.2.43, proto=https"), ip("10.0.0.5"));
        assert_eq!(
            f("for=192.0.2.43, for=10.1.1.1;for=10.1.1.2"),
            ip("10.0.0.5")
        );
        assert_eq!(f(r#"for="[2001:db8::1]:4711"#), ip("10.0.0.5"));
        assert_eq!(f("for=192.0.2.43, for=10.1.1.1, bogus"), ip("10.0.0.5"));
        assert_eq!(
            f("for=192.0.2.43, for=unknown, for=10.1.1.1"),
            ip("10.1.1.1")
        );
    }

    #[test]
    fn auto_prefers_forwarded_and_a_pinned_header_reads_only_that_one() {
        let both = [
            ("forwarded", "for=192.0.2.1"),
            ("x-forwarded-for", "198.51.100.2"),
        ];
        // The default reads only X-Forwarded-For: a client's own Forwarded changes nothing.
        assert_eq!(
            client(&rules("10.0.0.0/8"), "10.0.0.5", &both),
            ip("198.51.100.2")
        );
        let auto = rules("10.0.0.0/8").with_header(ForwardedHeader::Auto);
        assert_eq!(client(&auto, "10.0.0.5", &both), ip("192.0.2.1"));
        assert_eq!(
            client(&auto, "10.0.0.5", &[("x-forwarded-for", "198.51.100.2")]),
            ip("198.51.100.2")
        );
        let xff = rules("10.0.0.0/8").with_header(ForwardedHeader::XForwardedFor);
        assert_eq!(client(&xff, "10.0.0.5", &both), ip("198.51.100.2"));
        assert_eq!(
            client(&xff, "10.0.0.5", &[("forwarded", "for=192.0.2.1")]),
            ip("10.0.0.5")
        );
        let fwd = rules("10.0.0.0/8").with_header(ForwardedHeader::Forwarded);
        assert_eq!(client(&fwd, "10.0.0.5", &both), ip("192.0.2.1"));
        assert_eq!(
            client(&fwd, "10.0.0.5", &[("x-forwarded-for", "198.51.100.2")]),
            ip("10.0.0.5")
        );
    }

    #[test]
    fn ipv6_hops_with_brackets_and_ports_in_x_forwarded_for() {
        let r = rules("fd00::/8");
        for (value, want) in [
            ("2001:db8::1", "2001:db8::1"),
            ("[2001:db8::1]", "2001:db8::1"),
            ("[2001:db8::1]:443", "2001:db8::1"),
            ("192.0.2.1:8080", "192.0.2.1"),
            ("2001:db8::1, fd00::7", "2001:db8::1"),
        ] {
            assert_eq!(
                client(&r, "fd00::1", &[("x-forwarded-for", value)]),
                ip(want),
                "{value}"
            );
        }
    }

    #[test]
    fn ipv4_mapped_addresses_are_their_ipv4_address() {
        let r = rules("10.0.0.0/8");
        // A dual-stack listener sees an IPv4 proxy as ::ffff:10.0.0.5.
        let h = [("x-forwarded-for", "::ffff:203.0.113.9")];
        assert_eq!(client(&r, "::ffff:10.0.0.5", &h), ip("203.0.113.9"));
        // A mapped hop inside a trusted network is trusted.
        let h = [("x-forwarded-for", "203.0.113.9, ::ffff:10.1.1.1")];
        assert_eq!(client(&r, "10.0.0.5", &h), ip("203.0.113.9"));
        // Untrusted mapped peer: itself, as IPv4.
        assert_eq!(client(&r, "::ffff:198.51.100.7", &[]), ip("198.51.100.7"));
        // A mapped network in the list is its IPv4 network.
        let mapped = rules("::ffff:10.0.0.0/104");
        assert_eq!(
            client(&mapped, "10.0.0.5", &[("x-forwarded-for", "203.0.113.9")]),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn the_list_takes_cidrs_and_bare_addresses_and_names_a_bad_entry() {
        let r = rules(" 10.0.0.0/8 ,127.0.0.1,, ::1, 2001:db8::/32 ");
        for trusted in ["10.200.0.1", "127.0.0.1", "::1", "2001:db8::9"] {
            assert!(r.trusts(ip(trusted)), "{trusted}");
        }
        assert!(!r.trusts(ip("127.0.0.2")));
        // A host address with a prefix means its network.
        assert!(rules("10.1.2.3/8").trusts(ip("10.9.9.9")));
        assert!(rules("").is_empty());
        for bad in ["10.0.0.0/33", "localhost", "10.0.0.0/8;", "1.2.3"] {
            let err = format!("10.0.0.0/8,{bad}")
                .parse::<ProxyRules>()
                .unwrap_err();
            assert_eq!(err.entry, bad);
            assert!(err.to_string().contains(bad), "{err}");
        }
    }
}
