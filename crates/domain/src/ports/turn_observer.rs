use crate::turns::TurnRecord;
use crate::voice::TurnReport;

/// Where voice-turn metrics go (Prometheus in the binary). Every method does nothing by
/// default, so an observer implements only what it records.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait TurnObserver: Send + Sync {
    /// A partial transcript arrived.
    fn partial(&self) {}
    /// A turn started.
    fn started(&self) {}
    /// A turn ended.
    fn finished(&self, _report: &TurnReport) {}
    /// A turn's record (voice or chat) was made: its stage timings and token usage.
    fn recorded(&self, _record: &TurnRecord) {}
}

/// An observer that records nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoObserver;

impl TurnObserver for NoObserver {}
