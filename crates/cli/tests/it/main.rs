//! Integration tests: the real app on port 0 against real PostgreSQL, RabbitMQ and Redis,
//! each test with a fresh database and its own queue namespace.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod admin;
mod bad_input;
mod bounds;
mod brain;
mod cli;
mod console;
mod discord;
mod email;
mod fake_llm;
mod fleet;
mod helpers;
mod leads;
mod llm;
mod operators;
mod platforms;
mod races;
mod real_llm;
mod shop;
mod webchat;
