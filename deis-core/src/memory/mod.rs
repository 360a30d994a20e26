//! In-memory reference backends: real implementations to embed (tests, examples, a
//! single-process platform), held to the same conformance suites as the others.

mod discovery;
mod router;
mod scheduler;
mod store;

pub use discovery::MemoryDiscovery;
pub use router::MemoryRouter;
pub use scheduler::MemoryScheduler;
pub use store::MemoryStore;
