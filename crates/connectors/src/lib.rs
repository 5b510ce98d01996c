//! Outbound connectors: payment channels (an HTTP channel and the sandbox channel, issue #4) and
//! notifiers (SMTP, SMS gateway, signed webhooks, issue #5). Every one is a real network client,
//! tested against a real local listener. Nothing lives here yet; the crate exists so the
//! dependency direction (server → engine → connectors) is fixed from the start.
