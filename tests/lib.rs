//! The integration suite: every test drives the real `cairn` binary on a recipe tree in a
//! temporary directory (see `common`), and checks what a user relies on: files produced, what
//! ran and in which order, what was printed and the exit code.

mod common;

mod aliases;
mod backends;
mod cache;
mod checkpoints;
mod commands;
mod cost;
mod debian;
mod dialect;
mod diskfull;
mod drivers;
mod errors;
mod explain;
mod extend;
mod graph;
mod hello;
mod hooks;
mod hostile;
mod info;
mod install;
mod json;
mod kameleon;
mod kameleon_parity;
mod layers;
mod loader_props;
mod malformed;
mod output;
mod progress;
mod protocol;
mod report;
mod safety;
mod steps;
mod vars;
mod whole_output;
