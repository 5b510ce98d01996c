//! Outbound connectors, each a real network client tested against a real local listener:
//! payment channels (an HTTP channel, and the sandbox channel lenders rehearse failures with)
//! and the SMS gateway (an HTTP client, and a sandbox gateway).

pub mod channel;
pub mod sms;
