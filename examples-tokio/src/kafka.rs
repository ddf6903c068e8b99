//! Kafka through `rdkafka`: a consumer-group member that survives rebalances, offset commits
//! after the write, and an idempotent topic sink.
//!
//! Message format on the input topic: key = the customer id as text, payload = the amount in
//! cents as text. The output topic gets the enriched record as JSON, keyed by customer id, in
//! the partition of the same number as its input partition (modulo the output's partition
//! count), so each input partition's order is kept; every record carries the header
//! `dedup-key: TOPIC/PARTITION/OFFSET` of its input message.
//!
//! ## How a rebalance is handled
//!
//! A dedicated thread polls the consumer and hands messages to the batcher over a bounded
//! channel, recording per partition the offset after the last message handed over. When
//! librdkafka revokes partitions (another instance joined or left), it calls
//! [`GroupContext::pre_rebalance`] on that thread, which then takes nothing more and waits until
//! every message already pulled from the revoked partitions is written and its offset committed
//! (it flushes the batch being filled so that this takes no longer than a query and a write),
//! and only then lets the rebalance proceed. The new owner starts exactly where this instance
//! stopped. The protocol is `cooperative-sticky`: only the partitions that move are revoked, and
//! the others keep flowing.
//!
//! Commits are retried with backoff on errors that pass (`RebalanceInProgress`, coordinator
//! moves, timeouts); when the group fenced this member (`IllegalGeneration`, `UnknownMemberId`)
//! its commit cannot succeed: the service logs it and goes on, and the new owner re-reads those
//! messages (duplicates, never loss). Any other commit error ends the run with its name.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use futures_util::Stream;
use rdkafka::client::ClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, Message as _, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer as _};
use rdkafka::statistics::Statistics;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

use crate::batching::Flusher;
use crate::metrics::{ErrorKind, Metrics};
use crate::pipeline::Commit;
use crate::retry::Backoff;
use crate::sink::{Enriched, Sink};
use crate::source::{Message, Origin};

/// How long to wait for the broker when checking that it and the topic are there.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Where to connect and what to consume; `extra` is passed to librdkafka as is (`-X key=value`:
/// TLS, SASL, timeouts), after the service's own settings, so it can override them.
#[derive(Debug, Clone)]
pub struct KafkaOptions {
    pub brokers: String,
    pub group: String,
    pub topic: String,
    pub output_topic: String,
    pub extra: Vec<(String, String)>,
    /// How long a revoke may wait for the pulled messages to be written and committed.
    pub rebalance_wait: Duration,
    pub commit_backoff: Backoff,
}

impl KafkaOptions {
    pub fn new(brokers: &str, group: &str, topic: &str, output_topic: &str) -> Self {
        Self {
            brokers: brokers.into(),
            group: group.into(),
            topic: topic.into(),
            output_topic: output_topic.into(),
            extra: Vec::new(),
            rebalance_wait: Duration::from_secs(60),
            commit_backoff: Backoff {
                first: Duration::from_millis(50),
                max: Duration::from_secs(1),
                give_up_after: Duration::from_secs(10),
            },
        }
    }

    fn config(&self, own: &[(&str, &str)]) -> ClientConfig {
        let mut c = ClientConfig::new();
        // librdkafka logs only what the tracing filter (RUST_LOG) lets through for `librdkafka`.
        c.set_log_level(if tracing::enabled!(target: "librdkafka", tracing::Level::DEBUG) {
            RDKafkaLogLevel::Debug
        } else if tracing::enabled!(target: "librdkafka", tracing::Level::INFO) {
            RDKafkaLogLevel::Info
        } else if tracing::enabled!(target: "librdkafka", tracing::Level::WARN) {
            RDKafkaLogLevel::Warning
        } else {
            RDKafkaLogLevel::Error
        });
        c.set("bootstrap.servers", &self.brokers);
        for (k, v) in own {
            c.set(*k, *v);
        }
        for (k, v) in &self.extra {
            c.set(k, v);
        }
        c
    }
}

/// What the polling thread and the pipeline share about the group.
#[derive(Debug, Default)]
struct GroupState {
    /// Partitions of the input topic this member owns now.
    assigned: BTreeSet<i32>,
    /// Per partition, the offset after the last message handed to the pipeline.
    pulled: BTreeMap<i32, i64>,
    /// Per partition, the offset after the last message written whose commit was settled
    /// (committed, or refused because the member was fenced).
    settled: BTreeMap<i32, i64>,
    /// Received, not yet handed to the pipeline (it had no room).
    backlog: std::collections::VecDeque<Message>,
    /// The pipeline ended (or was aborted): nothing more will be written.
    pipeline_gone: bool,
    flusher: Option<Flusher>,
}

/// The group's bookkeeping for one service instance.
#[derive(Debug)]
pub struct Group {
    state: Mutex<GroupState>,
    changed: Condvar,
    instance: String,
    topic: String,
    metrics: Arc<Metrics>,
    rebalance_wait: Duration,
    rebalances: AtomicU64,
    /// Set after each rebalance: the polling thread pauses or resumes the new assignment.
    rebalanced: AtomicBool,
}

impl Group {
    fn lock(&self) -> MutexGuard<'_, GroupState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Partitions this member owns now.
    pub fn assigned(&self) -> BTreeSet<i32> {
        self.lock().assigned.clone()
    }

    /// Revokes seen so far.
    pub fn revokes(&self) -> u64 {
        self.rebalances.load(Ordering::Relaxed)
    }

    fn mark_gone(&self) {
        self.lock().pipeline_gone = true;
        self.changed.notify_all();
    }

    /// Waits until every message pulled from `partitions` is written and settled, the pipeline is
    /// gone, or `rebalance_wait` passed. Runs on the polling thread, inside librdkafka's
    /// rebalance callback: nothing more is taken from the consumer meanwhile.
    fn drain(&self, partitions: &[i32]) {
        let started = std::time::Instant::now();
        let mut st = self.lock();
        // Not handed over yet: never written, so simply not taken (their new owner reads them).
        st.backlog
            .retain(|m| m.origin.is_none_or(|o| !partitions.contains(&o.partition)));
        loop {
            if st.pipeline_gone {
                return;
            }
            let waiting: Vec<(i32, i64, i64)> = partitions
                .iter()
                .filter_map(|p| {
                    let pulled = *st.pulled.get(p)?;
                    let settled = st.settled.get(p).copied().unwrap_or(-1);
                    (settled < pulled).then_some((*p, settled, pulled))
                })
                .collect();
            if waiting.is_empty() {
                tracing::info!(instance = %self.instance, ?partitions, waited = ?started.elapsed(), "revoke: everything pulled is written and committed");
                return;
            }
            if started.elapsed() > self.rebalance_wait {
                tracing::warn!(
                    instance = %self.instance,
                    "revoke: gave up waiting after {:?} for partitions (partition, settled, pulled) {waiting:?}; their new owner re-reads the rest",
                    self.rebalance_wait
                );
                return;
            }
            // Emit the batch being filled now rather than at its deadline.
            if let Some(f) = st.flusher.clone() {
                drop(st);
                f.flush();
                st = self.lock();
            }
            st = self
                .changed
                .wait_timeout(st, Duration::from_millis(20))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

/// The consumer's context: rebalance handling, librdkafka's logs into `tracing`, lag metrics.
pub struct GroupContext {
    group: Arc<Group>,
}

impl ClientContext for GroupContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        forward_log(&self.group.instance, level, fac, message);
    }

    fn stats(&self, statistics: Statistics) {
        let Some(topic) = statistics.topics.get(&self.group.topic) else {
            return;
        };
        let assigned = self.group.assigned();
        for (p, s) in &topic.partitions {
            if assigned.contains(p) && s.consumer_lag >= 0 {
                self.group.metrics.set_lag(&self.group.instance, *p, s.consumer_lag);
            }
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.group.metrics.error(ErrorKind::Consume);
        tracing::error!(instance = %self.group.instance, "kafka: {error}: {reason}");
    }
}

impl ConsumerContext for GroupContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            let partitions = partitions_of(tpl, &self.group.topic);
            self.group.rebalances.fetch_add(1, Ordering::Relaxed);
            if consumer.assignment_lost() {
                tracing::warn!(instance = %self.group.instance, ?partitions, "partitions lost (session timed out): what was pulled and not committed will be read again by their new owner");
                return;
            }
            tracing::info!(instance = %self.group.instance, ?partitions, "revoke: finishing the messages already pulled");
            self.group.drain(&partitions);
        }
    }

    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let mut st = self.group.lock();
        match rebalance {
            Rebalance::Assign(tpl) => {
                let partitions = partitions_of(tpl, &self.group.topic);
                tracing::info!(instance = %self.group.instance, ?partitions, "assigned");
                st.assigned.extend(partitions);
            }
            Rebalance::Revoke(tpl) => {
                for p in partitions_of(tpl, &self.group.topic) {
                    st.assigned.remove(&p);
                    st.pulled.remove(&p);
                    st.settled.remove(&p);
                    self.group.metrics.clear_lag(&self.group.instance, p);
                }
            }
            Rebalance::Error(e) => {
                self.group.metrics.error(ErrorKind::Consume);
                tracing::error!(instance = %self.group.instance, "rebalance error: {e}");
            }
        }
        self.group.metrics.set_assigned(&self.group.instance, st.assigned.len());
        self.group.rebalanced.store(true, Ordering::SeqCst);
    }
}

fn partitions_of(tpl: &TopicPartitionList, topic: &str) -> Vec<i32> {
    tpl.elements_for_topic(topic).iter().map(|e| e.partition()).collect()
}

/// librdkafka's log lines as `tracing` events (target `librdkafka`).
fn forward_log(instance: &str, level: RDKafkaLogLevel, fac: &str, message: &str) {
    match level {
        RDKafkaLogLevel::Emerg | RDKafkaLogLevel::Alert | RDKafkaLogLevel::Critical | RDKafkaLogLevel::Error => {
            tracing::error!(target: "librdkafka", instance, "{fac}: {message}")
        }
        RDKafkaLogLevel::Warning => tracing::warn!(target: "librdkafka", instance, "{fac}: {message}"),
        RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
            tracing::info!(target: "librdkafka", instance, "{fac}: {message}")
        }
        RDKafkaLogLevel::Debug => tracing::debug!(target: "librdkafka", instance, "{fac}: {message}"),
    }
}

type GroupConsumer = BaseConsumer<GroupContext>;

/// One member of the consumer group: the consumer, its polling thread, and what it shares with
/// the pipeline. Create with [`join`]; end with [`Member::close`].
pub struct Member {
    consumer: Arc<GroupConsumer>,
    group: Arc<Group>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    fatal: Arc<Mutex<Option<String>>>,
}

impl Member {
    pub fn group(&self) -> &Arc<Group> {
        &self.group
    }

    /// The error that stopped the consumer, if one did (the message stream then ended).
    pub fn fatal_error(&self) -> Option<String> {
        self.fatal.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Leaves the group. Call once the pipeline ended: whatever it did not write stays
    /// uncommitted and goes to the next owner. Also what an abort does: nothing is committed here.
    pub async fn close(mut self) -> Result<()> {
        self.stop.store(true, Ordering::SeqCst);
        self.group.mark_gone();
        let thread = self.thread.take();
        let consumer = Arc::clone(&self.consumer);
        tokio::task::spawn_blocking(move || {
            if let Some(t) = thread {
                let _ = t.join();
            }
            // Leave the group now (the revoke callback returns at once: the pipeline is gone).
            if consumer.close_queue().is_ok() {
                let deadline = std::time::Instant::now() + Duration::from_secs(10);
                while !consumer.closed() && std::time::Instant::now() < deadline {
                    let _ = consumer.poll(Duration::from_millis(50));
                }
            }
        })
        .await?;
        match self.fatal_error() {
            Some(e) => Err(anyhow!(e)),
            None => Ok(()),
        }
    }
}

impl Drop for Member {
    /// Dropped without [`Member::close`] (the task was aborted): the polling thread stops, and
    /// nothing more is committed; the consumer leaves the group when its last user is gone.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.group.mark_gone();
    }
}

/// Joins `opts.group` as `instance`: checks that the broker answers and the topic exists
/// (a clear error otherwise, within a few seconds), subscribes, and starts the polling thread.
/// Returns the member, its messages (ending after `limit` if given, or on a fatal consumer
/// error), and the commit step for the pipeline.
pub async fn join(
    opts: &KafkaOptions,
    instance: &str,
    metrics: Arc<Metrics>,
    limit: Option<u64>,
) -> Result<(Member, impl Stream<Item = Message> + Send + 'static, KafkaCommit)> {
    let group = Arc::new(Group {
        state: Mutex::default(),
        changed: Condvar::new(),
        instance: instance.to_string(),
        topic: opts.topic.clone(),
        metrics: Arc::clone(&metrics),
        rebalance_wait: opts.rebalance_wait,
        rebalances: AtomicU64::new(0),
        rebalanced: AtomicBool::new(false),
    });
    let consumer: GroupConsumer = opts
        .config(&[
            ("group.id", &opts.group),
            // Offsets are committed by the service, after the batch is written.
            ("enable.auto.commit", "false"),
            ("enable.auto.offset.store", "false"),
            ("auto.offset.reset", "earliest"),
            ("partition.assignment.strategy", "cooperative-sticky"),
            ("session.timeout.ms", "10000"),
            ("heartbeat.interval.ms", "500"),
            ("statistics.interval.ms", "1000"),
            // The broker answers a fetch as soon as there is data, or after this.
            ("fetch.wait.max.ms", "50"),
        ])
        .create_with_context(GroupContext {
            group: Arc::clone(&group),
        })
        .context("cannot create the Kafka consumer")?;
    let consumer = Arc::new(consumer);
    check_topic(&consumer, &opts.brokers, &opts.topic).await?;
    consumer
        .subscribe(&[&opts.topic])
        .with_context(|| format!("cannot subscribe to topic {}", opts.topic))?;

    // Room for two full batches: the batcher pulls from here while the service works.
    let (tx, rx) = tokio::sync::mpsc::channel::<Message>(512);
    let stop = Arc::new(AtomicBool::new(false));
    let fatal = Arc::new(Mutex::new(None));
    let thread = {
        let (consumer, group, stop, fatal) = (
            Arc::clone(&consumer),
            Arc::clone(&group),
            Arc::clone(&stop),
            Arc::clone(&fatal),
        );
        std::thread::Builder::new()
            .name(format!("kafka-poll-{instance}"))
            .spawn(move || poll_loop(&consumer, &group, tx, &stop, &fatal, limit))?
    };
    let stream = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|m| (m, rx)) });
    let commit = KafkaCommit {
        consumer: Arc::clone(&consumer),
        group: Arc::clone(&group),
        topic: opts.topic.clone(),
        pending: BTreeMap::new(),
        backoff: opts.commit_backoff,
    };
    let member = Member {
        consumer,
        group,
        stop,
        thread: Some(thread),
        fatal,
    };
    Ok((member, stream, commit))
}

async fn check_topic(consumer: &Arc<GroupConsumer>, brokers: &str, topic: &str) -> Result<()> {
    let c = Arc::clone(consumer);
    let t = topic.to_string();
    // fetch_metadata blocks: keep it off the runtime's worker threads.
    let metadata = tokio::task::spawn_blocking(move || c.fetch_metadata(Some(&t), CONNECT_TIMEOUT))
        .await?
        .map_err(|e| anyhow!("cannot reach the Kafka broker(s) at {brokers}: {e}"))?;
    topic_partitions(&metadata, topic, brokers).map(|_| ())
}

/// The partition count of `topic`, or a clear error if the broker does not have it.
fn topic_partitions(metadata: &rdkafka::metadata::Metadata, topic: &str, brokers: &str) -> Result<i32> {
    match metadata.topics().iter().find(|t| t.name() == topic) {
        Some(t) if t.error().is_none() && !t.partitions().is_empty() => Ok(t.partitions().len() as i32),
        Some(t) => match t.error().map(RDKafkaErrorCode::from) {
            Some(RDKafkaErrorCode::UnknownTopicOrPartition) => bail!("topic {topic} does not exist on {brokers}"),
            Some(e) => bail!("topic {topic} is not usable on {brokers}: {e}"),
            None => bail!("topic {topic} has no partitions on {brokers}"),
        },
        None => bail!("topic {topic} does not exist on {brokers}"),
    }
}

/// Errors after which consuming cannot go on.
fn fatal_consume_error(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::UnknownTopicOrPartition
            | RDKafkaErrorCode::TopicAuthorizationFailed
            | RDKafkaErrorCode::GroupAuthorizationFailed
            | RDKafkaErrorCode::ClusterAuthorizationFailed
            | RDKafkaErrorCode::Fatal
    )
}

/// Messages received but not yet handed to the pipeline, at most; past this, the partitions are
/// paused (librdkafka keeps what it already fetched, so a little more may arrive).
const BACKLOG: usize = 1024;

/// The polling thread. It never blocks on the pipeline: librdkafka serves rebalances and group
/// protocol steps only while the application polls, so a member that stopped polling because
/// its service is slow would hold up the whole group. Backpressure pauses the partitions instead.
fn poll_loop(
    consumer: &GroupConsumer,
    group: &Group,
    tx: tokio::sync::mpsc::Sender<Message>,
    stop: &AtomicBool,
    fatal: &Mutex<Option<String>>,
    limit: Option<u64>,
) {
    use tokio::sync::mpsc::error::TrySendError;
    let mut remaining = limit.unwrap_or(u64::MAX);
    // `None` once the limit is reached or the pipeline stopped taking: the message stream has
    // ended, but the thread goes on polling (partitions paused) until the member closes, so
    // that the group's rebalances are still served meanwhile.
    let mut tx = Some(tx);
    let mut paused = false;
    while !stop.load(Ordering::SeqCst) {
        // Hand over what the pipeline has room for.
        let backlog = {
            let mut st = group.lock();
            let mut ended = remaining == 0;
            while let (Some(sender), false) = (&tx, ended) {
                let Some(m) = st.backlog.pop_front() else { break };
                let origin = m.origin;
                match sender.try_send(m) {
                    Ok(()) => {
                        if let Some(o) = origin {
                            st.pulled.insert(o.partition, o.offset + 1);
                        }
                        remaining -= 1;
                        ended = remaining == 0;
                    }
                    Err(TrySendError::Full(m)) => {
                        st.backlog.push_front(m);
                        break;
                    }
                    Err(TrySendError::Closed(_)) => ended = true,
                }
            }
            if ended {
                // Dropping the sender ends the message stream. What was received and not handed
                // over is never written nor committed: the next owner reads it.
                tx = None;
                st.backlog.clear();
            }
            st.backlog.len()
        };
        let intake = tx.is_some();
        // A rebalance may have added partitions that are not paused yet, or kept paused ones.
        let rebalanced = group.rebalanced.swap(false, Ordering::SeqCst);
        let hold = backlog >= BACKLOG || !intake;
        let pause = hold && (!paused || rebalanced);
        let resume = !hold && backlog == 0 && (paused || rebalanced);
        if pause || resume {
            if let Ok(assignment) = consumer.assignment() {
                if pause {
                    if intake {
                        tracing::info!(instance = %group.instance, backlog, "the service is behind: pausing the partitions");
                    }
                    paused = consumer.pause(&assignment).is_ok();
                } else {
                    paused = consumer.resume(&assignment).is_err();
                }
            }
        }
        let wait = if backlog > 0 { 5 } else { 100 };
        let msg = match consumer.poll(Duration::from_millis(wait)) {
            None => continue,
            Some(Ok(m)) => {
                let now_ms = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as i64);
                // Latency counts from the message's Kafka timestamp (when it was produced).
                let age = m.timestamp().to_millis().map_or(Duration::ZERO, |ts| {
                    Duration::from_millis(now_ms.saturating_sub(ts).max(0) as u64)
                });
                let now = std::time::Instant::now();
                Message {
                    seq: m.offset() as u64,
                    // A key that is not a number is looked up as -1: it is still written.
                    customer_id: number(m.key()).unwrap_or(-1),
                    amount_cents: number(m.payload()).unwrap_or(0),
                    arrived: tokio::time::Instant::from_std(now.checked_sub(age).unwrap_or(now)),
                    origin: Some(Origin {
                        partition: m.partition(),
                        offset: m.offset(),
                    }),
                }
            }
            Some(Err(e)) => {
                group.metrics.error(ErrorKind::Consume);
                match e.rdkafka_error_code() {
                    Some(code) if fatal_consume_error(code) => {
                        let text = format!("consuming topic {}: {e}", group.topic);
                        tracing::error!(instance = %group.instance, "{text}");
                        *fatal.lock().unwrap_or_else(|e| e.into_inner()) = Some(text);
                        return;
                    }
                    // librdkafka reports transient broker trouble this way and recovers itself.
                    _ => {
                        tracing::warn!(instance = %group.instance, "kafka: {e}");
                        continue;
                    }
                }
            }
        };
        if intake {
            group.lock().backlog.push_back(msg);
        }
    }
}

/// A key or payload holding a decimal number.
fn number(bytes: Option<&[u8]>) -> Option<i64> {
    std::str::from_utf8(bytes?).ok()?.trim().parse().ok()
}

/// Commit errors that pass: try again. `IllegalGeneration` and `UnknownMemberId` are among
/// them: a commit that raced a rebalance carried the old generation, and with the cooperative
/// protocol the member usually still owns its partitions in the new one; retried, the commit
/// carries the new generation. Only if they persist was the member fenced.
fn retriable_commit(code: RDKafkaErrorCode) -> bool {
    fenced_commit(code)
        || matches!(
            code,
            RDKafkaErrorCode::RebalanceInProgress
                | RDKafkaErrorCode::CoordinatorLoadInProgress
                | RDKafkaErrorCode::CoordinatorNotAvailable
                | RDKafkaErrorCode::NotCoordinator
                | RDKafkaErrorCode::RequestTimedOut
                | RDKafkaErrorCode::NetworkException
                | RDKafkaErrorCode::BrokerTransportFailure
                | RDKafkaErrorCode::OperationTimedOut
                | RDKafkaErrorCode::WaitingForCoordinator
                | RDKafkaErrorCode::AllBrokersDown
        )
}

/// Commit errors that mean this member no longer owns its partitions: the commit cannot
/// succeed, and the new owner re-reads from the last commit. Not a reason to stop.
fn fenced_commit(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::IllegalGeneration
            | RDKafkaErrorCode::UnknownMemberId
            | RDKafkaErrorCode::FencedInstanceId
            | RDKafkaErrorCode::State
    )
}

/// Commit errors that end the run: neither retried to success nor a sign of being fenced.
fn fatal_commit(code: Option<RDKafkaErrorCode>) -> bool {
    !code.is_some_and(|c| fenced_commit(c) || retriable_commit(c))
}

fn commit_code(e: &anyhow::Error) -> Option<RDKafkaErrorCode> {
    e.downcast_ref::<KafkaError>().and_then(KafkaError::rdkafka_error_code)
}

/// Commits, per partition, the offset after the last written message, for the partitions this
/// member still owns.
pub struct KafkaCommit {
    consumer: Arc<GroupConsumer>,
    group: Arc<Group>,
    topic: String,
    /// Written, not yet committed: per partition, the offset to commit.
    pending: BTreeMap<i32, i64>,
    backoff: Backoff,
}

impl KafkaCommit {
    async fn commit_once(&self, tpl: TopicPartitionList) -> Result<()> {
        let consumer = Arc::clone(&self.consumer);
        // A synchronous commit: when it returns, the broker has the offsets.
        tokio::task::spawn_blocking(move || consumer.commit(&tpl, CommitMode::Sync)).await??;
        Ok(())
    }
}

impl Commit for KafkaCommit {
    fn attach(&mut self, flusher: &Flusher) {
        self.group.lock().flusher = Some(flusher.clone());
    }

    async fn commit(&mut self, batch: &[Message]) -> Result<()> {
        for o in batch.iter().filter_map(|m| m.origin) {
            let e = self.pending.entry(o.partition).or_insert(0);
            *e = (*e).max(o.offset + 1);
        }
        // Only partitions still owned: a commit for one given away could move its new owner's
        // offset back.
        let assigned = self.group.assigned();
        let gone: Vec<i32> = self.pending.keys().filter(|p| !assigned.contains(p)).copied().collect();
        for p in gone {
            tracing::warn!(instance = %self.group.instance, partition = p, "written after its partition was revoked: left uncommitted, its new owner writes it again (a duplicate)");
            self.pending.remove(&p);
        }
        if self.pending.is_empty() {
            return Ok(());
        }
        let mut tpl = TopicPartitionList::new();
        for (p, offset) in &self.pending {
            tpl.add_partition_offset(&self.topic, *p, Offset::Offset(*offset))?;
        }
        let metrics = Arc::clone(&self.group.metrics);
        let instance = self.group.instance.clone();
        let this = &*self;
        let result = this
            .backoff
            .run(
                || {
                    let tpl = tpl.clone();
                    let metrics = &metrics;
                    async move {
                        let t = tokio::time::Instant::now();
                        let r = this.commit_once(tpl).await;
                        metrics.commit_took(t.elapsed());
                        r
                    }
                },
                |e| commit_code(e).is_some_and(retriable_commit),
                |e, retry| {
                    metrics.error(ErrorKind::Commit);
                    if let Some(d) = retry {
                        tracing::warn!(instance = %instance, "commit failed, retrying in {d:?}: {e:#}");
                    }
                },
            )
            .await;
        match result {
            Ok(()) => {}
            Err(e) if !fatal_commit(commit_code(&e)) => {
                // Not committed, and it cannot be: what this batch wrote is written again by the
                // partitions' next owner. Keep going; the revoke (or loss) follows.
                tracing::warn!(instance = %instance, "commit not done, the member was probably fenced; the partitions' next owner re-reads from the last commit: {e:#}");
            }
            Err(e) => return Err(e.context(format!("committing offsets {:?} of topic {}", self.pending, self.topic))),
        }
        let mut st = self.group.lock();
        for (p, o) in std::mem::take(&mut self.pending) {
            st.settled.insert(p, o);
        }
        drop(st);
        self.group.changed.notify_all();
        Ok(())
    }
}

/// Produces each enriched record to a topic; a batch is written when the broker acked all of it.
pub struct KafkaSink {
    producer: FutureProducer,
    topic: String,
    input_topic: String,
    partitions: i32,
}

impl KafkaSink {
    /// An idempotent producer: librdkafka's retries never duplicate or reorder a record.
    pub async fn new(opts: &KafkaOptions) -> Result<Self> {
        let producer: FutureProducer = opts
            .config(&[
                ("enable.idempotence", "true"),
                ("message.timeout.ms", "30000"),
                ("linger.ms", "2"),
            ])
            .create()
            .context("cannot create the Kafka producer")?;
        let p = producer.clone();
        let topic = opts.output_topic.clone();
        let metadata = tokio::task::spawn_blocking(move || p.client().fetch_metadata(Some(&topic), CONNECT_TIMEOUT))
            .await?
            .map_err(|e| anyhow!("cannot reach the Kafka broker(s) at {}: {e}", opts.brokers))?;
        let partitions = topic_partitions(&metadata, &opts.output_topic, &opts.brokers)?;
        Ok(Self {
            producer,
            topic: opts.output_topic.clone(),
            input_topic: opts.topic.clone(),
            partitions,
        })
    }
}

impl Sink for KafkaSink {
    async fn write(&mut self, records: &[Enriched]) -> Result<()> {
        let mut deliveries = Vec::with_capacity(records.len());
        // Enqueued one by one, in order; a full local queue is waited out, never reordered.
        for r in records {
            let key = r.message.customer_id.to_string();
            let payload = r.to_json();
            let mut record = FutureRecord::to(&self.topic).key(&key).payload(&payload);
            if let Some(o) = r.message.origin {
                let dedup = format!("{}/{}/{}", self.input_topic, o.partition, o.offset);
                record = record
                    .partition(o.partition.rem_euclid(self.partitions))
                    .headers(OwnedHeaders::new().insert(Header {
                        key: "dedup-key",
                        value: Some(&dedup),
                    }));
            }
            loop {
                match self.producer.send_result(record) {
                    Ok(d) => break deliveries.push(d),
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        record = back;
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    Err((e, _)) => bail!("producing to topic {}: {e}", self.topic),
                }
            }
        }
        for d in deliveries {
            match d.await {
                Ok(Ok(_)) => {}
                Ok(Err((e, _))) => bail!("producing to topic {}: {e}", self.topic),
                Err(_) => bail!("producing to topic {}: the producer was dropped", self.topic),
            }
        }
        Ok(())
    }
}
