//! The builder: git receive over smart HTTP and SSH, the build pipeline (buildpack API, Dockerfile, image), slug artifacts.
//!
//! Not written yet.
