//! Behaviour of the endpoints, by resource group.

mod deploys;
mod resources;
mod users;
