//! QEMU support for the qemu drivers: a client for the HMP monitor socket.

pub mod monitor;
