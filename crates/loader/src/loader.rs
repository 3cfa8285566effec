//! The multi-threaded, prefetching epoch iterator.
//!
//! Batch `b` of an epoch is always the samples `order[b·B .. (b+1)·B]` (failed samples left
//! out), and every random choice comes from `rng_for(seed, stream, [epoch, index])`, so the
//! batches are identical whatever the number of threads. Workers build whole batches; at most
//! `threads + prefetch_batches` batches are in flight, so memory stays bounded.
//!
//! A consumer done with a batch hands it back with [`Loader::recycle`]: its image buffer goes
//! to a pool (at most `threads + prefetch_batches` buffers kept) that workers take from instead
//! of allocating. At 448 px and batch 16 an image buffer is 38.5 MB, above glibc's mmap
//! threshold, so a fresh one per batch is a fresh mapping whose pages all fault in on first
//! write. A taken buffer needs no clearing: every successful sample overwrites its whole slot
//! and the buffer is truncated after the last one, so the bytes are the same either way.
use crate::batch::{Batch, EpochStats};
use crate::config::LoaderConfig;
use crate::error::{Error, Result};
use crate::sample::{Combiner, Context, Scratch};
use crate::source::SampleSource;
use crate::transform::Normaliser;
use crossbeam_channel::{bounded, Receiver, Sender};
use deda_core::{rng_for, Stream};
use rand::seq::SliceRandom;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// Yields batches of a [`SampleSource`], optionally with De-DA combinations.
pub struct Loader {
    pub(crate) ctx: Arc<Context>,
    buffers: Arc<BufferPool>,
}

/// Image buffers handed back by consumers, taken by the workers of any epoch.
struct BufferPool {
    free: Mutex<Vec<Vec<f32>>>,
    /// At most this many buffers are kept.
    cap: usize,
    /// Buffers taken from the pool instead of allocated.
    reused: AtomicU64,
}

impl BufferPool {
    /// A buffer of `len` floats: a recycled one (its old contents left in place, see the module
    /// docs) or a fresh zeroed one.
    fn take(&self, len: usize) -> Vec<f32> {
        let recycled = self.free.lock().ok().and_then(|mut f| f.pop());
        match recycled {
            Some(mut buf) => {
                self.reused.fetch_add(1, Ordering::Relaxed);
                buf.resize(len, 0.0);
                buf
            }
            None => vec![0.0; len],
        }
    }

    fn put(&self, buf: Vec<f32>) {
        if buf.capacity() == 0 {
            return;
        }
        if let Ok(mut free) = self.free.lock() {
            if free.len() < self.cap {
                free.push(buf);
            }
        }
    }
}

/// One built batch with the counts of its samples.
struct Built {
    batch: Batch,
    stats: EpochStats,
}

impl Loader {
    /// A loader over `source`; with a [`Combiner`], samples are combined as it draws.
    ///
    /// # Errors
    /// [`Error::Config`] listing the config's problems.
    pub fn new(
        config: LoaderConfig,
        source: Arc<dyn SampleSource>,
        combiner: Option<Combiner>,
    ) -> Result<Loader> {
        config.validate()?;
        let normaliser = Normaliser::new(config.mean, config.std);
        let cap = (config.threads + config.prefetch_batches).max(1);
        Ok(Loader {
            ctx: Arc::new(Context {
                config,
                source,
                combiner: combiner.map(Arc::new),
                peers: None,
                normaliser,
            }),
            buffers: Arc::new(BufferPool {
                free: Mutex::new(Vec::with_capacity(cap)),
                cap,
                reused: AtomicU64::new(0),
            }),
        })
    }

    /// The same loader with a generative peer's rule: samples are replaced by generated whole
    /// images as [`Peers`](crate::Peers) draws (a loader has a combiner or peers, not both; a
    /// sample the combiner combined is never replaced).
    pub fn with_peers(self, peers: crate::peers::Peers) -> Loader {
        let ctx = match Arc::try_unwrap(self.ctx) {
            Ok(mut ctx) => {
                ctx.peers = Some(Arc::new(peers));
                ctx
            }
            Err(shared) => Context {
                config: shared.config.clone(),
                source: Arc::clone(&shared.source),
                combiner: shared.combiner.clone(),
                peers: Some(Arc::new(peers)),
                normaliser: shared.normaliser.clone(),
            },
        };
        Loader {
            ctx: Arc::new(ctx),
            buffers: self.buffers,
        }
    }

    /// Hands a finished batch back: its image buffer is kept (up to `threads +
    /// prefetch_batches` buffers) for the workers of this loader to fill again instead of
    /// allocating a new one. Call it once the images have been copied out (e.g. into a
    /// tensor); the batches yielded are the same whether or not batches are recycled.
    pub fn recycle(&self, batch: Batch) {
        self.buffers.put(batch.images);
    }

    /// How many batches so far were built in a recycled buffer.
    pub fn reused_buffers(&self) -> u64 {
        self.buffers.reused.load(Ordering::Relaxed)
    }

    /// Number of batches per epoch ([`LoaderConfig::batches_for`]: a final batch below
    /// `min_last_batch` samples, or any incomplete one with `drop_last`, is left out).
    pub fn num_batches(&self) -> usize {
        self.ctx.config.batches_for(self.ctx.source.len())
    }

    /// The sample order of `epoch`: shuffled with `rng_for(seed, Shuffle, [epoch])` if asked.
    pub fn order(&self, epoch: u64) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.ctx.source.len()).collect();
        if self.ctx.config.shuffle {
            order.shuffle(&mut rng_for(
                self.ctx.config.seed,
                Stream::Shuffle,
                &[epoch],
            ));
        }
        order
    }

    /// Starts the workers of `epoch` and returns the batch iterator.
    ///
    /// # Errors
    /// [`Error::Worker`] if a thread cannot be started.
    pub fn epoch(&self, epoch: u64) -> Result<Epoch> {
        let cfg = &self.ctx.config;
        let n_batches = self.num_batches();
        let in_flight = (cfg.threads + cfg.prefetch_batches).max(1);
        let (job_tx, job_rx) = bounded::<usize>(in_flight);
        let (out_tx, out_rx) = bounded::<(usize, Built)>(in_flight);
        let order = Arc::new(self.order(epoch));
        let mut workers = Vec::with_capacity(cfg.threads);
        for t in 0..cfg.threads {
            let (ctx, buffers, order, jobs, out) = (
                Arc::clone(&self.ctx),
                Arc::clone(&self.buffers),
                Arc::clone(&order),
                job_rx.clone(),
                out_tx.clone(),
            );
            let handle = std::thread::Builder::new()
                .name(format!("deda-loader-{t}"))
                .spawn(move || worker(&ctx, &buffers, &order, epoch, &jobs, &out))
                .map_err(|e| Error::Worker(e.to_string()))?;
            workers.push(handle);
        }
        let mut it = Epoch {
            epoch,
            jobs: Some(job_tx),
            results: out_rx,
            pending: BTreeMap::new(),
            next: 0,
            next_job: 0,
            n_batches,
            total: (n_batches * cfg.batch_size).min(self.ctx.source.len()),
            max_bad_fraction: cfg.max_bad_fraction,
            stats: EpochStats::default(),
            workers,
            done: false,
            combining: self
                .ctx
                .combiner
                .as_ref()
                .is_some_and(|c| c.sampler.config().p_aug > 0.0),
        };
        for _ in 0..in_flight {
            it.send_job();
        }
        Ok(it)
    }
}

fn worker(
    ctx: &Context,
    buffers: &BufferPool,
    order: &[usize],
    epoch: u64,
    jobs: &Receiver<usize>,
    out: &Sender<(usize, Built)>,
) {
    let mut scratch = Scratch::default();
    while let Ok(b) = jobs.recv() {
        let built = build_batch(ctx, buffers, order, epoch, b, &mut scratch);
        if out.send((b, built)).is_err() {
            return;
        }
    }
}

fn build_batch(
    ctx: &Context,
    buffers: &BufferPool,
    order: &[usize],
    epoch: u64,
    b: usize,
    scratch: &mut Scratch,
) -> Built {
    let cfg = &ctx.config;
    let start = b * cfg.batch_size;
    let idx = &order[start.min(order.len())..(start + cfg.batch_size).min(order.len())];
    let side = cfg.crop as usize;
    let per_image = 3 * side * side;
    let nc = ctx.source.num_classes();
    let mut batch = Batch {
        // Slot `n` is overwritten whole by the `n`-th successful sample (a failed one writes
        // nothing) and the tail is truncated below, so a recycled buffer's old bytes never show.
        images: buffers.take(idx.len() * per_image),
        targets: vec![0.0; idx.len() * nc],
        indices: Vec::with_capacity(idx.len()),
        combined: Vec::with_capacity(idx.len()),
        n: 0,
        h: side,
        w: side,
        num_classes: nc,
    };
    let mut stats = EpochStats::default();
    for &i in idx {
        let n = batch.n;
        let out = &mut batch.images[n * per_image..(n + 1) * per_image];
        match ctx.produce(i, epoch, scratch, &mut stats, out) {
            Ok(p) => {
                let row = &mut batch.targets[n * nc..(n + 1) * nc];
                for (c, w) in p.target {
                    if let Some(t) = row.get_mut(c.index()) {
                        *t += w;
                    }
                }
                batch.indices.push(i);
                batch.combined.push(p.combined);
                stats.samples += 1;
                stats.combined += usize::from(p.combined);
                stats.generated += usize::from(p.generated);
                batch.n += 1;
            }
            Err(e) => {
                stats.bad += 1;
                stats.last_bad.push(format!("{}: {e}", ctx.source.id(i)));
            }
        }
    }
    batch.images.truncate(batch.n * per_image);
    batch.targets.truncate(batch.n * nc);
    Built { batch, stats }
}

/// The batches of one epoch, in order; see the module docs.
pub struct Epoch {
    epoch: u64,
    jobs: Option<Sender<usize>>,
    results: Receiver<(usize, Built)>,
    pending: BTreeMap<usize, Built>,
    next: usize,
    next_job: usize,
    n_batches: usize,
    total: usize,
    max_bad_fraction: f64,
    stats: EpochStats,
    workers: Vec<JoinHandle<()>>,
    done: bool,
    /// Whether the epoch combines (a combiner with `p_aug > 0`): an epoch that drew samples
    /// for combination and combined none is an error at its end.
    combining: bool,
}

impl Epoch {
    /// Counts over the batches yielded so far.
    pub fn stats(&self) -> &EpochStats {
        &self.stats
    }

    fn send_job(&mut self) {
        if self.next_job < self.n_batches {
            if let Some(tx) = &self.jobs {
                if tx.send(self.next_job).is_ok() {
                    self.next_job += 1;
                }
            }
        }
    }

    fn take_next(&mut self) -> Result<Built> {
        loop {
            if let Some(b) = self.pending.remove(&self.next) {
                return Ok(b);
            }
            match self.results.recv() {
                Ok((i, b)) => {
                    self.pending.insert(i, b);
                }
                Err(_) => return Err(Error::Worker("a loader worker stopped".into())),
            }
        }
    }
}

impl Iterator for Epoch {
    type Item = Result<Batch>;

    fn next(&mut self) -> Option<Result<Batch>> {
        while !self.done && self.next < self.n_batches {
            let built = match self.take_next() {
                Ok(b) => b,
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            };
            self.next += 1;
            self.send_job();
            self.stats.merge(&built.stats);
            let budget = (self.max_bad_fraction * self.total as f64).floor() as usize;
            if self.stats.bad > budget {
                self.done = true;
                return Some(Err(Error::BadSamples {
                    epoch: self.epoch,
                    bad: self.stats.bad,
                    total: self.total,
                    budget,
                    last: self.stats.last_bad.clone(),
                }));
            }
            if built.batch.n > 0 {
                return Some(Ok(built.batch));
            }
        }
        if !self.done && self.combining {
            self.done = true;
            let s = &self.stats;
            if s.combined == 0 && s.no_cdp + s.no_cip > 0 {
                return Some(Err(Error::NothingCombined {
                    epoch: self.epoch,
                    drawn: s.no_cdp + s.no_cip,
                    no_cdp: s.no_cdp,
                    no_cip: s.no_cip,
                }));
            }
        }
        None
    }
}

impl Drop for Epoch {
    fn drop(&mut self) {
        self.jobs = None;
        // Drain so no worker blocks on a full result channel, then join.
        while self.results.try_recv().is_ok() {}
        for w in self.workers.drain(..) {
            while !w.is_finished() {
                let _ = self
                    .results
                    .recv_timeout(std::time::Duration::from_millis(5));
            }
            let _ = w.join();
        }
    }
}
