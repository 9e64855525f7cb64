//! Criterion micro-benchmarks of the hot pure functions: token mint, webhook verify + parse,
//! sentence segmentation, room naming. `cargo bench -p june-bench --bench micro`.

use criterion::{Criterion, criterion_group, criterion_main};
use june_domain::ports::{TokenIssuer, WebhookVerifier};
use june_domain::{Grants, SentenceSplitter, TokenRequest, generated_room_name};
use june_livekit_adapter::{LiveKitTokenIssuer, LiveKitWebhookVerifier};
use june_testkit::webhook::{authorization, participant_event, protojson};
use livekit_protocol as proto;
use secrecy::SecretString;

const KEY: &str = "APIbench";
const SECRET: &str = "bench-secret-0123456789abcdef0123456789";

fn token_mint(c: &mut Criterion) {
    let issuer = LiveKitTokenIssuer::new(KEY, SecretString::from(SECRET));
    let request = TokenRequest {
        identity: "alice".into(),
        name: "Alice".into(),
        metadata: String::new(),
        grants: Grants::owner("room-alice-1a2b3c4d"),
        ttl: chrono::Duration::hours(6),
    };
    c.bench_function("token mint (owner, HS256)", |b| {
        b.iter(|| {
            issuer
                .issue(std::hint::black_box(&request))
                .map(|t| t.jwt.len())
        })
    });
}

fn webhook_verify(c: &mut Criterion) {
    let room = proto::Room {
        sid: "RM_bench".into(),
        name: "room-bench".into(),
        ..Default::default()
    };
    let who = proto::ParticipantInfo {
        sid: "PA_1".into(),
        identity: "alice".into(),
        ..Default::default()
    };
    let body = protojson(&participant_event("participant_joined", &room, &who));
    let auth = authorization(body.as_bytes(), KEY, SECRET, 300);
    let verifier = LiveKitWebhookVerifier::new(KEY, &SecretString::from(SECRET));
    c.bench_function("webhook verify + parse", |b| {
        b.iter(|| {
            verifier
                .verify(std::hint::black_box(body.as_bytes()), Some(&auth))
                .is_ok()
        })
    });
}

fn segmentation(c: &mut Criterion) {
    let reply = "Sure! Dr. Smith said the rate is 3.5 percent. Is that right?! Yes... \
                 It was confirmed on Monday. 今天很好。Bye.";
    c.bench_function("sentence segmentation (reply in 8-byte deltas)", |b| {
        b.iter(|| {
            let mut s = SentenceSplitter::default();
            let mut n = 0;
            for chunk in reply.as_bytes().chunks(8) {
                // Deltas arrive as text; split on char boundaries like a real stream would.
                n += s.push(&String::from_utf8_lossy(chunk)).len();
            }
            n + s.finish().len()
        })
    });
}

fn room_naming(c: &mut Criterion) {
    c.bench_function("room name generation", |b| {
        b.iter(|| {
            generated_room_name(
                std::hint::black_box("alice@example.com"),
                "0123456789abcdef",
            )
        })
    });
}

criterion_group!(
    benches,
    token_mint,
    webhook_verify,
    segmentation,
    room_naming
);
criterion_main!(benches);
