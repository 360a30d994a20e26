//! The controller: the platform's business rules as a library, the Deis v1 REST API (axum), a typed client (reqwest) and the OpenAPI document.
//!
//! Not written yet.
