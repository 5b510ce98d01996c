//! Outbound connectors, each a real network client tested against a real local listener:
//! payment channels (an HTTP channel, and the sandbox channel lenders rehearse failures with)
//! the SMS gateway (an HTTP client, and a sandbox gateway), email over SMTP, signed webhooks and
//! identity verification providers (an HTTP client, and a sandbox provider), and credit bureaus
//! (an HTTP client, and a sandbox bureau).

pub mod bureau;
pub mod channel;
pub mod email;
pub mod identity;
pub mod sms;
pub mod webhook;
