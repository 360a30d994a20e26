//! Scheduler backends: local processes (the embedded default), Docker (feature `docker`), Docker Swarm (feature `swarm`), and the publisher loop that turns healthy instances into discovery endpoints.
//!
//! Not written yet.
