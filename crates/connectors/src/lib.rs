//! Outbound connectors, each a real network client tested against a real local listener:
//! payment channels (an HTTP channel, and the sandbox channel lenders rehearse failures with).
//! Notifiers (SMTP, SMS gateway, signed webhooks) come with issue #5.

pub mod channel;
