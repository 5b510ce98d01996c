//! Notifications: the outbox, written in every business transaction, is published here into
//! deliveries — one per webhook that subscribes to the event, and one per way of reaching the
//! borrower (SMS, email) when the event is one borrowers are told of — each sent by a durable
//! job with retries and backoff. Every attempt is logged; a delivery out of attempts is marked
//! failed, counted and logged as an error (the alert), and can be re-driven.

pub mod on_call;
pub mod templates;

pub use lendcore_store::DeliveryStatus;

use lendcore_domain::topic::Topic;
use std::sync::Arc;

use async_trait::async_trait;
use lendcore_connectors::email::{Email, MailError, Mailer};
use lendcore_connectors::sms::{Sms, SmsError, SmsGateway};
use lendcore_connectors::webhook::{WebhookClient, WebhookEndpoint, WebhookError};
use lendcore_domain::Timestamp;
use lendcore_domain::alerting::Recipient as AlertRecipient;
use lendcore_domain::borrower::Mobile;
use lendcore_domain::reasons::Language;
use lendcore_store::{
    AttemptOutcome, Delivery, DeliveryAttempt, DeliveryChannel, Job, NewJob, OutboxEvent, Store,
    UnitOfWork,
};
use serde::Serialize;

use crate::jobs::kinds;
use crate::jobs::{JobContext, JobDone, JobFailure, JobHandler};
use crate::vault::Vault;
use crate::{Engine, EngineError, new_id};

/// Attempts per delivery: with the runner's default backoff (doubling from 2 s, at most
/// 10 minutes apart) about four hours of trying; a longer `jobs.max_delay_ms` stretches it.
pub const MAX_ATTEMPTS: u32 = 30;
/// Batches one call publishes before it returns, so a backlog never holds off a shutdown.
const BATCHES_PER_CALL: usize = 10;
const PUBLISH_BATCH: u32 = 200;
/// Borrowers are not sent news older than this when it is published (after an outage, or the
/// first start of a version that publishes): a day-old reminder would mislead. Webhooks still
/// get every event; receivers deduplicate by its id.
pub const STALE_FOR_BORROWERS: chrono::Duration = chrono::Duration::hours(24);

/// Where notifications go, as configured.
#[derive(Default)]
pub struct Notifications {
    pub webhooks: Vec<WebhookEndpoint>,
    pub webhook_client: Option<WebhookClient>,
    pub mailer: Option<Arc<dyn Mailer>>,
    /// The language borrowers are written to.
    pub language: Language,
    /// Where a link's token is appended to make the address borrowers open, e.g.
    /// `https://app.lender.example/open?link=`; without it lendcore texts no links.
    pub link_base_url: Option<String>,
    /// Where operators reach lendcore's API, e.g. `https://lendcore.lender.internal`: alert
    /// messages link their examples there; without it they give the paths alone.
    pub operator_url: Option<String>,
}

/// Publishes unpublished outbox events into deliveries and their jobs; returns how many
/// events it published. Safe to run in several processes at once: a delivery exists once per
/// event, channel and target, and its job once per delivery.
pub async fn publish(engine: &Engine) -> Result<usize, EngineError> {
    let mut published = 0;
    for _ in 0..BATCHES_PER_CALL {
        let now = engine.clock.now();
        let mut uow = engine.store.begin().await?;
        let events = uow.unpublished_outbox(PUBLISH_BATCH).await?;
        if events.is_empty() {
            return Ok(published);
        }
        for event in &events {
            let deliveries = deliveries_for(engine, uow.as_mut(), event, now).await?;
            let inserted = uow.insert_deliveries(&deliveries).await?;
            for delivery in deliveries.iter().filter(|d| inserted.contains(&d.id)) {
                if delivery.status == DeliveryStatus::Pending {
                    // Written at commit with the rest: a delivery's job is new when the
                    // delivery is, and both go in this transaction.
                    uow.enqueue_job(&job(&delivery.id, now), now).await?;
                } else {
                    metrics::counter!("lendcore_deliveries_skipped_total",
                        "channel" => channel_name(delivery.channel))
                    .increment(1);
                }
            }
        }
        let ids: Vec<String> = events.iter().map(|e| e.id.clone()).collect();
        uow.mark_outbox_published(&ids, now).await?;
        uow.commit().await?;
        published += events.len();
        // Counted once committed: closures, expiries, failures and refusals of work in flight,
        // and every other business event, by its reason (empty when it has none).
        for event in &events {
            let reason = event.payload["reason"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            metrics::counter!("lendcore_events_total",
                "topic" => event.topic.clone(), "reason" => reason)
            .increment(1);
        }
    }
    Ok(published)
}

fn job(delivery_id: &str, now: Timestamp) -> NewJob {
    NewJob {
        id: format!("deliver:{delivery_id}"),
        kind: kinds::DELIVERY.to_owned(),
        payload: serde_json::json!({ "delivery_id": delivery_id }),
        run_at: now,
        max_attempts: MAX_ATTEMPTS,
    }
}

fn channel_name(channel: DeliveryChannel) -> &'static str {
    match channel {
        DeliveryChannel::Webhook => "webhook",
        DeliveryChannel::Sms => "sms",
        DeliveryChannel::Email => "email",
    }
}

/// Who a borrower-facing event is for.
#[derive(Debug, Clone, Copy)]
enum Recipient<'a> {
    Borrower(&'a str),
    /// An applicant not registered as a borrower yet, reached at the number they signed in
    /// with, as their application gives it.
    Applicant(&'a str),
}

impl Recipient<'_> {
    /// Where a message that cannot be sent is recorded as meant to go.
    fn nowhere(self) -> String {
        match self {
            Recipient::Borrower(id) => format!("borrower:{id}"),
            Recipient::Applicant(id) => format!("application:{id}"),
        }
    }
}

fn delivery(
    event: &OutboxEvent,
    channel: DeliveryChannel,
    target: String,
    recipient: Option<Recipient<'_>>,
    skipped: Option<&str>,
    now: Timestamp,
) -> Delivery {
    let (borrower_id, application_id) = match recipient {
        Some(Recipient::Borrower(id)) => (Some(id.to_owned()), None),
        Some(Recipient::Applicant(id)) => (None, Some(id.to_owned())),
        None => (None, None),
    };
    Delivery {
        id: new_id(),
        event_id: event.id.clone(),
        topic: event.topic.clone(),
        channel,
        target,
        borrower_id,
        application_id,
        status: if skipped.is_some() {
            DeliveryStatus::Skipped
        } else {
            DeliveryStatus::Pending
        },
        attempts: 0,
        last_error: skipped.map(str::to_owned),
        created_at: now,
        updated_at: now,
    }
}

async fn deliveries_for(
    engine: &Engine,
    uow: &mut dyn UnitOfWork,
    event: &OutboxEvent,
    now: Timestamp,
) -> Result<Vec<Delivery>, EngineError> {
    let notifications = &engine.notifications;
    let mut out: Vec<Delivery> = notifications
        .webhooks
        .iter()
        .filter(|w| w.subscribes_to(&event.topic))
        .map(|w| {
            delivery(
                event,
                DeliveryChannel::Webhook,
                w.id.clone(),
                None,
                None,
                now,
            )
        })
        .collect();
    let topic = Topic::parse(&event.topic);
    if matches!(topic, Some(Topic::AlertFired | Topic::AlertResolved)) {
        out.extend(on_call_deliveries(engine, event, &out, now));
        return Ok(out);
    }
    let told = topic.is_some_and(|topic| templates::tells_borrower(topic, &event.payload));
    if !told {
        return Ok(out);
    }
    out.extend(borrower_deliveries(engine, uow, event, now).await?);
    Ok(out)
}

/// An alert's deliveries to its rule's recipients: the webhooks it names (once, when one
/// subscribes to `alert.*` as well) and the on-call addresses, kept as they are written: they
/// are the lender's staff's, in the rule for every operator to read.
fn on_call_deliveries(
    engine: &Engine,
    event: &OutboxEvent,
    subscribed: &[Delivery],
    now: Timestamp,
) -> Vec<Delivery> {
    let notify = event.payload["rule"]["notify"].clone();
    // No rule (deleted before this version resolved its alert): no one named.
    let recipients: Vec<AlertRecipient> = serde_json::from_value(notify).unwrap_or_default();
    let mut out: Vec<Delivery> = Vec::new();
    for recipient in recipients {
        let (channel, target, missing) = match recipient {
            AlertRecipient::Webhook(id) => {
                let configured = engine.notifications.webhooks.iter().any(|w| w.id == id);
                (
                    DeliveryChannel::Webhook,
                    id,
                    (!configured).then_some("the rule names a webhook that is not configured"),
                )
            }
            AlertRecipient::Sms(to) => (
                DeliveryChannel::Sms,
                to,
                engine
                    .sms
                    .is_none()
                    .then_some("no SMS gateway is configured ([sms])"),
            ),
            AlertRecipient::Email(to) => (
                DeliveryChannel::Email,
                to,
                engine
                    .notifications
                    .mailer
                    .is_none()
                    .then_some("no mail server is configured ([smtp])"),
            ),
        };
        let seen = subscribed
            .iter()
            .chain(&out)
            .any(|d| d.channel == channel && d.target == target);
        if !seen {
            out.push(delivery(event, channel, target, None, missing, now));
        }
    }
    out
}

/// The borrower's deliveries of an event they are told of: one per way of reaching them, or
/// one recorded as skipped with why — never nothing.
async fn borrower_deliveries(
    engine: &Engine,
    uow: &mut dyn UnitOfWork,
    event: &OutboxEvent,
    now: Timestamp,
) -> Result<Vec<Delivery>, EngineError> {
    let recipient = match (
        event.payload["borrower_id"].as_str(),
        event.payload["application_id"].as_str(),
    ) {
        (Some(borrower_id), _) => Recipient::Borrower(borrower_id),
        (None, Some(application_id)) => Recipient::Applicant(application_id),
        (None, None) => {
            // Recorded, not silently dropped.
            return Ok(vec![delivery(
                event,
                DeliveryChannel::Sms,
                format!("{}:{}", event.aggregate_type, event.aggregate_id),
                None,
                Some("the event names no borrower: there is no address to send to"),
                now,
            )]);
        }
    };
    let to = Addressing {
        engine,
        event,
        recipient,
        now,
    };
    if now - event.created_at > STALE_FOR_BORROWERS {
        return Ok(vec![to.skip(
            "older than a day when published: not sent to the borrower",
        )]);
    }
    let Some(vault) = &engine.vault else {
        return Ok(vec![to.skip(
            "no personal data key is configured: borrowers' addresses cannot be read",
        )]);
    };
    match recipient {
        Recipient::Applicant(application_id) => {
            Ok(vec![to.applicant(uow, vault, application_id).await?])
        }
        Recipient::Borrower(borrower_id) => to.borrower(uow, vault, borrower_id).await,
    }
}

/// Who an event's message goes to, and how each way of reaching them is recorded.
struct Addressing<'a> {
    engine: &'a Engine,
    event: &'a OutboxEvent,
    recipient: Recipient<'a>,
    now: Timestamp,
}

impl Addressing<'_> {
    fn skip(&self, why: &str) -> Delivery {
        delivery(
            self.event,
            DeliveryChannel::Sms,
            self.recipient.nowhere(),
            Some(self.recipient),
            Some(why),
            self.now,
        )
    }

    fn sms_to(&self, mobile: &Mobile) -> Delivery {
        delivery(
            self.event,
            DeliveryChannel::Sms,
            mobile.masked(),
            Some(self.recipient),
            self.engine
                .sms
                .is_none()
                .then_some("no SMS gateway is configured ([sms])"),
            self.now,
        )
    }

    fn email_to(&self, email: &lendcore_domain::borrower::Email) -> Delivery {
        delivery(
            self.event,
            DeliveryChannel::Email,
            email.masked(),
            Some(self.recipient),
            self.engine
                .notifications
                .mailer
                .is_none()
                .then_some("no mail server is configured ([smtp])"),
            self.now,
        )
    }

    /// An applicant not registered yet: reached at the number they signed in with, when their
    /// application's form gives that very number.
    async fn applicant(
        &self,
        uow: &mut dyn UnitOfWork,
        vault: &Vault,
        application_id: &str,
    ) -> Result<Delivery, EngineError> {
        let mobile = match uow.find_application(application_id).await {
            Ok(Some((app, sealed))) => crate::applications::applicant_mobile(vault, &app, &sealed),
            Ok(None) => Ok(None),
            // A record that cannot be read back is skipped like a form that cannot be
            // opened; the database being away holds the outbox until it is back.
            Err(err @ lendcore_store::StoreError::Corrupt { .. }) => Err(err.into()),
            Err(err) => return Err(err.into()),
        };
        Ok(match mobile {
            Ok(Some(mobile)) => self.sms_to(&mobile),
            Ok(None) => self.skip(
                "the applicant is not registered yet and their application does not give \
                 the number they signed in with: there is no address to send to",
            ),
            Err(err) => {
                tracing::error!(event = %self.event.id, application = %application_id, error = %err,
                    "an application cannot be opened; the applicant's notification is skipped");
                self.skip("the application could not be opened; see the error log")
            }
        })
    }

    /// A registered borrower: by SMS and by email, as their record gives them.
    async fn borrower(
        &self,
        uow: &mut dyn UnitOfWork,
        vault: &Vault,
        borrower_id: &str,
    ) -> Result<Vec<Delivery>, EngineError> {
        let found = match uow.find_borrower(borrower_id).await {
            Ok(found) => found,
            Err(err @ lendcore_store::StoreError::Corrupt { .. }) => {
                tracing::error!(event = %self.event.id, borrower = %borrower_id, error = %err,
                    "a borrower's record cannot be read; their notification is skipped");
                return Ok(vec![self.skip(
                    "the borrower's record could not be read; see the error log",
                )]);
            }
            Err(err) => return Err(err.into()),
        };
        let Some(stored) = found else {
            // Seen, not silent: a borrower the lender never registered here cannot be reached.
            return Ok(vec![self.skip(
                "no borrower is registered under this id: there is no address to send to",
            )]);
        };
        let data = match vault.open(&stored.personal, &stored.id) {
            Ok(data) => data,
            // A record that cannot be opened (sealed under another key, corrupt) must not
            // stop the events after it nor the lender's webhooks for this one: the
            // borrower's message is recorded as skipped, with why.
            Err(err) => {
                tracing::error!(event = %self.event.id, borrower = %borrower_id, error = %err,
                    "a borrower's record cannot be opened; their notification is skipped");
                return Ok(vec![self.skip(
                    "the borrower's record could not be opened; see the error log",
                )]);
            }
        };
        let mut out = vec![match &data.mobile {
            Some(mobile) => self.sms_to(mobile),
            None => self.skip("the borrower has no mobile number"),
        }];
        if let Some(email) = &data.email {
            out.push(self.email_to(email));
        }
        Ok(out)
    }
}

/// What a webhook receives: the event, as it was recorded.
#[derive(Serialize)]
struct WebhookBody<'a> {
    id: &'a str,
    topic: &'a str,
    aggregate_type: &'a str,
    aggregate_id: &'a str,
    created_at: Timestamp,
    data: &'a serde_json::Value,
}

/// Sends one delivery per job, records the attempt, and decides what comes next.
pub struct DeliveryHandler {
    notifications: Arc<Notifications>,
    vault: Option<Arc<Vault>>,
    sms: Option<Arc<dyn SmsGateway>>,
}

impl DeliveryHandler {
    pub fn new(engine: &Engine) -> Self {
        Self {
            notifications: engine.notifications.clone(),
            vault: engine.vault.clone(),
            sms: engine.sms.clone(),
        }
    }
}

/// Where a recipient is reached, as the gateway and the mail server are given it.
#[derive(Default)]
struct Contact {
    mobile: Option<String>,
    email: Option<String>,
    /// The language they chose; the lender's default otherwise.
    language: Option<Language>,
}

/// How one attempt went.
enum Sent {
    Delivered(String),
    Retryable(String),
    Rejected(String),
}

/// An on-call recipient is reached at the address the delivery was made for (validated with
/// the rule).
fn on_call_contact(delivery: &Delivery) -> Contact {
    let to = Some(delivery.target.clone());
    match delivery.channel {
        DeliveryChannel::Sms => Contact {
            mobile: to,
            ..Contact::default()
        },
        DeliveryChannel::Email => Contact {
            email: to,
            ..Contact::default()
        },
        DeliveryChannel::Webhook => Contact::default(),
    }
}

impl DeliveryHandler {
    /// Where the delivery's recipient is reached now (they may have changed their number).
    async fn contact(&self, store: &dyn Store, delivery: &Delivery) -> Result<Contact, JobFailure> {
        let Some(vault) = &self.vault else {
            return Ok(Contact::default());
        };
        let mut uow = store.begin_read().await?;
        if let Some(id) = &delivery.borrower_id {
            return match uow.find_borrower(id).await? {
                Some(stored) => {
                    let data = vault.open(&stored.personal, &stored.id).map_err(|e| {
                        JobFailure::permanent(format!(
                            "the borrower's record could not be opened: {e}"
                        ))
                    })?;
                    Ok(Contact {
                        mobile: data.mobile.as_ref().map(|m| m.expose().to_owned()),
                        email: data.email.as_ref().map(|e| e.expose().to_owned()),
                        language: stored.language,
                    })
                }
                None => Ok(Contact::default()),
            };
        }
        if let Some(id) = &delivery.application_id {
            let mobile = match uow.find_application(id).await? {
                Some((app, sealed)) => crate::applications::applicant_mobile(vault, &app, &sealed)
                    .map_err(|e| {
                        JobFailure::permanent(format!("the application could not be opened: {e}"))
                    })?,
                None => None,
            };
            return Ok(Contact {
                mobile: mobile.as_ref().map(|m| m.expose().to_owned()),
                email: None,
                language: None,
            });
        }
        Ok(Contact::default())
    }

    async fn send(
        &self,
        store: &dyn Store,
        delivery: &Delivery,
        event: &OutboxEvent,
        now: Timestamp,
    ) -> Result<Sent, JobFailure> {
        let default_language = self.notifications.language;
        match delivery.channel {
            DeliveryChannel::Webhook => {
                let (Some(endpoint), Some(client)) = (
                    self.notifications
                        .webhooks
                        .iter()
                        .find(|w| w.id == delivery.target),
                    &self.notifications.webhook_client,
                ) else {
                    return Ok(Sent::Rejected(format!(
                        "webhook {} is no longer configured",
                        delivery.target
                    )));
                };
                let body = serde_json::to_vec(&WebhookBody {
                    id: &event.id,
                    topic: &event.topic,
                    aggregate_type: &event.aggregate_type,
                    aggregate_id: &event.aggregate_id,
                    created_at: event.created_at,
                    data: &event.payload,
                })
                .map_err(|e| JobFailure::permanent(e.to_string()))?;
                Ok(
                    match client
                        .send(endpoint, &event.id, &event.topic, body, now.timestamp())
                        .await
                    {
                        Ok(status) => Sent::Delivered(format!("HTTP {status}")),
                        Err(WebhookError::Rejected(d)) => Sent::Rejected(d),
                        Err(WebhookError::Unavailable(d)) => Sent::Retryable(d),
                    },
                )
            }
            DeliveryChannel::Sms | DeliveryChannel::Email => {
                let topic = Topic::parse(&event.topic);
                let on_call = matches!(topic, Some(Topic::AlertFired | Topic::AlertResolved));
                let contact = if on_call {
                    on_call_contact(delivery)
                } else {
                    self.contact(store, delivery).await?
                };
                let language = contact.language.unwrap_or(default_language);
                let message = match topic {
                    Some(topic) if on_call => on_call::render_alert(
                        topic,
                        &event.payload,
                        language,
                        self.notifications.operator_url.as_deref(),
                    ),
                    Some(topic) => templates::render(topic, &event.payload, language),
                    None => None,
                };
                let Some(message) = message else {
                    return Ok(Sent::Rejected(
                        "no message for this event (unknown topic, or its template failed: see the error log)".to_owned(),
                    ));
                };
                if delivery.channel == DeliveryChannel::Sms {
                    let (Some(sms), Some(mobile)) = (&self.sms, contact.mobile.as_ref()) else {
                        return Ok(Sent::Rejected(
                            "no SMS gateway, or the borrower has no mobile number now".to_owned(),
                        ));
                    };
                    let sms_message = Sms {
                        to: mobile.clone(),
                        text: message.short,
                        reference: delivery.id.clone(),
                    };
                    Ok(match sms.send(&sms_message).await {
                        Ok(id) => Sent::Delivered(format!("gateway id {id}")),
                        Err(SmsError::Rejected(d)) => Sent::Rejected(d),
                        Err(SmsError::Unavailable(d)) => Sent::Retryable(d),
                    })
                } else {
                    let (Some(mailer), Some(address)) =
                        (&self.notifications.mailer, contact.email.as_ref())
                    else {
                        return Ok(Sent::Rejected(
                            "no mail server, or the borrower has no email address now".to_owned(),
                        ));
                    };
                    let email = Email {
                        to: address.clone(),
                        subject: message.subject,
                        text: message.text,
                    };
                    Ok(match mailer.send(&email).await {
                        Ok(()) => Sent::Delivered("accepted by the mail server".to_owned()),
                        Err(MailError::Rejected(d)) => Sent::Rejected(d),
                        Err(MailError::Unavailable(d)) => Sent::Retryable(d),
                    })
                }
            }
        }
    }
}

#[async_trait]
impl JobHandler for DeliveryHandler {
    fn kind(&self) -> &'static str {
        kinds::DELIVERY
    }

    async fn run(&self, job: &Job, ctx: &JobContext) -> Result<JobDone, JobFailure> {
        let id = job.payload["delivery_id"]
            .as_str()
            .ok_or_else(|| JobFailure::permanent("no delivery_id in the payload"))?;
        let (delivery, event) = {
            let mut uow = ctx.store.begin_read().await?;
            let delivery = uow
                .find_delivery(id)
                .await?
                .ok_or_else(|| JobFailure::permanent(format!("delivery {id} does not exist")))?;
            let event = uow
                .find_outbox_event(&delivery.event_id)
                .await?
                .ok_or_else(|| {
                    JobFailure::permanent(format!("event {} does not exist", delivery.event_id))
                })?;
            (delivery, event)
        };
        match delivery.status {
            DeliveryStatus::Delivered | DeliveryStatus::Skipped => return Ok(JobDone::Succeeded),
            DeliveryStatus::Pending | DeliveryStatus::Failed => {}
        }
        let now = ctx.clock.now();
        if moot(ctx.store.as_ref(), &delivery, &event).await? {
            let attempt = DeliveryAttempt {
                delivery_id: delivery.id.clone(),
                attempt: delivery.attempts + 1,
                at: now,
                outcome: AttemptOutcome::Rejected,
                detail: "the incident is over: its notice is no longer sent".to_owned(),
            };
            let mut uow = ctx.store.begin().await?;
            uow.record_attempt(&attempt, DeliveryStatus::Skipped, Some(&attempt.detail))
                .await?;
            uow.commit().await?;
            return Ok(JobDone::Succeeded);
        }
        // Whatever stops an attempt is recorded as one: a delivery never stays pending with
        // its job gone.
        let sent = match self.send(ctx.store.as_ref(), &delivery, &event, now).await {
            Ok(sent) => sent,
            Err(JobFailure {
                message,
                retryable: true,
            }) => Sent::Retryable(message),
            Err(JobFailure {
                message,
                retryable: false,
            }) => Sent::Rejected(message),
        };
        let last_attempt = job.attempts >= job.max_attempts;
        let (outcome, status, detail) = match &sent {
            Sent::Delivered(d) => (AttemptOutcome::Delivered, DeliveryStatus::Delivered, d),
            Sent::Retryable(d) if !last_attempt => {
                (AttemptOutcome::Retryable, DeliveryStatus::Pending, d)
            }
            Sent::Retryable(d) => (AttemptOutcome::Retryable, DeliveryStatus::Failed, d),
            Sent::Rejected(d) => (AttemptOutcome::Rejected, DeliveryStatus::Failed, d),
        };
        let attempt = DeliveryAttempt {
            delivery_id: delivery.id.clone(),
            attempt: delivery.attempts + 1,
            at: now,
            outcome,
            detail: detail.chars().take(500).collect(),
        };
        let error = (status != DeliveryStatus::Delivered).then_some(attempt.detail.as_str());
        let mut uow = ctx.store.begin().await?;
        uow.record_attempt(&attempt, status, error).await?;
        uow.commit().await?;
        let channel = channel_name(delivery.channel);
        metrics::counter!("lendcore_delivery_attempts_total", "channel" => channel,
        "outcome" => match outcome {
            AttemptOutcome::Delivered => "delivered",
            AttemptOutcome::Retryable => "retryable",
            AttemptOutcome::Rejected => "rejected",
        })
        .increment(1);
        match sent {
            Sent::Delivered(_) => Ok(JobDone::Succeeded),
            Sent::Retryable(d) if !last_attempt => Err(JobFailure::retryable(d)),
            Sent::Retryable(d) | Sent::Rejected(d) => {
                metrics::counter!("lendcore_deliveries_failed_total", "channel" => channel)
                    .increment(1);
                tracing::error!(delivery = %delivery.id, topic = %delivery.topic, channel,
                    target = %delivery.target, error = %d,
                    "a notification could not be delivered; re-drive it (POST /v1/deliveries/{{id}}/redrive) once the cause is fixed");
                Err(JobFailure::permanent(d))
            }
        }
    }
}

/// Whether a message to a borrower has been overtaken: an incident's notice still unsent (a
/// retry, a re-drive) once the incident is over would arrive after "back to normal".
async fn moot(
    store: &dyn Store,
    delivery: &Delivery,
    event: &OutboxEvent,
) -> Result<bool, JobFailure> {
    let notice = Topic::parse(&event.topic) == Some(Topic::IncidentNotice);
    let to_borrower = match delivery.channel {
        DeliveryChannel::Sms | DeliveryChannel::Email => true,
        DeliveryChannel::Webhook => false,
    };
    let Some(id) = event.payload["incident"]["id"]
        .as_str()
        .filter(|_| notice && to_borrower)
    else {
        return Ok(false);
    };
    let mut uow = store.begin_read().await?;
    Ok(uow.find_incident(id).await?.is_some_and(|i| !i.is_open()))
}

/// A delivery and its attempts, for operators.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeliveryView {
    pub id: String,
    pub event_id: String,
    pub topic: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub channel: DeliveryChannel,
    /// A webhook's id, or the address masked.
    pub target: String,
    pub borrower_id: Option<String>,
    /// For an applicant not registered yet: the application they are reached through.
    pub application_id: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub status: DeliveryStatus,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
    /// Every attempt, oldest first (in the single-delivery view only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub log: Vec<AttemptView>,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AttemptView {
    pub attempt: i64,
    pub at: chrono::DateTime<chrono::Utc>,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub outcome: AttemptOutcome,
    pub detail: String,
}

fn view(d: Delivery, log: Vec<DeliveryAttempt>) -> DeliveryView {
    DeliveryView {
        id: d.id,
        event_id: d.event_id,
        topic: d.topic,
        channel: d.channel,
        target: d.target,
        borrower_id: d.borrower_id,
        application_id: d.application_id,
        status: d.status,
        attempts: d.attempts,
        last_error: d.last_error,
        created_at: d.created_at,
        updated_at: d.updated_at,
        log: log
            .into_iter()
            .map(|a| AttemptView {
                attempt: a.attempt,
                at: a.at,
                outcome: a.outcome,
                detail: a.detail,
            })
            .collect(),
    }
}

pub async fn list(
    engine: &Engine,
    status: Option<DeliveryStatus>,
    event_id: Option<&str>,
    limit: u32,
) -> Result<Vec<DeliveryView>, EngineError> {
    let mut uow = engine.store.begin_read().await?;
    Ok(uow
        .list_deliveries(status, event_id, limit)
        .await?
        .into_iter()
        .map(|d| view(d, Vec::new()))
        .collect())
}

fn not_found() -> EngineError {
    EngineError::not_found("not_found.delivery", "no delivery with that id")
}

pub async fn get(engine: &Engine, id: &str) -> Result<DeliveryView, EngineError> {
    let mut uow = engine.store.begin_read().await?;
    let delivery = uow.find_delivery(id).await?.ok_or_else(not_found)?;
    let log = uow.delivery_attempts(id).await?;
    Ok(view(delivery, log))
}

/// Tries a failed delivery again, with a fresh set of attempts. A delivery whose job died
/// without recording its end reads as failed too (see `store/src/deliveries.rs`).
pub async fn redrive(engine: &Engine, id: &str) -> Result<DeliveryView, EngineError> {
    let job_id = format!("deliver:{id}");
    {
        let mut uow = engine.store.begin_read().await?;
        let delivery = uow.find_delivery(id).await?.ok_or_else(not_found)?;
        match delivery.status {
            DeliveryStatus::Failed => {}
            DeliveryStatus::Pending | DeliveryStatus::Delivered | DeliveryStatus::Skipped => {
                return Err(EngineError::conflict(
                    "conflict.delivery_not_failed",
                    "only a delivery whose attempts ran out is re-driven; this one is delivered, \
                     skipped or still being tried",
                ));
            }
        }
    }
    crate::jobs::redrive_job(engine, &job_id, None).await?;
    get(engine, id).await
}
