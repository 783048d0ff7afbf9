//! Password hashing as a bounded resource (ARCHITECTURE.md §4): Argon2id on a dedicated pool of
//! one thread per core behind a bounded queue. A full queue answers `Busy` at once, so a signup
//! flood gets 503 quickly while memory stays flat. Each thread keeps its Argon2 memory block and
//! reuses it, which keeps the cost of a hash flat from the first one.

use crate::password::Password;
use argon2::password_hash::{Output, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use crossbeam_channel::{Receiver, Sender, TrySendError};
use rand::RngCore;
use rand::rngs::OsRng;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::oneshot;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashParams {
    /// Memory in KiB.
    pub m_cost: u32,
    pub t_cost: u32,
    pub p_cost: u32,
}

impl Default for HashParams {
    fn default() -> Self {
        Self { m_cost: 19_456, t_cost: 2, p_cost: 1 }
    }
}

#[derive(Debug, Clone)]
pub struct HasherConfig {
    pub params: HashParams,
    /// Threads; 0 means one per core.
    pub threads: usize,
    /// Jobs that may wait; beyond this a request is refused with `Busy`.
    pub queue: usize,
}

impl Default for HasherConfig {
    fn default() -> Self {
        Self { params: HashParams::default(), threads: 0, queue: 64 }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HashError {
    #[error("the hashing queue is full")]
    Busy,
    #[error("hashing failed: {0}")]
    Failed(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    pub matches: bool,
    /// The stored hash used weaker parameters than the configured ones.
    pub needs_rehash: bool,
}

enum Job {
    Hash { password: Password, reply: oneshot::Sender<Result<String, HashError>> },
    Verify { phc: String, password: Password, reply: oneshot::Sender<Result<Verified, HashError>> },
}

/// A handle to the hashing pool; clones share it. The threads end when the last handle drops.
#[derive(Clone)]
pub struct PasswordHasher {
    inner: Arc<Inner>,
}

struct Inner {
    /// New hashes (signups, password changes): shed first under load.
    jobs: Sender<Job>,
    /// Verifications (logins): their own queue, and taken first by every thread, so a signup
    /// flood cannot starve sign-ins.
    logins: Sender<Job>,
    params: HashParams,
    threads: usize,
    in_flight: AtomicUsize,
    dummy_phc: String,
}

impl PasswordHasher {
    pub fn new(config: HasherConfig) -> Result<Self, HashError> {
        let threads = if config.threads == 0 {
            std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
        } else {
            config.threads
        };
        let params = config.params;
        argon(params)?; // refuse bad parameters at start, not at the first signup
        let (jobs, queue) = crossbeam_channel::bounded::<Job>(config.queue.max(1));
        let (logins, login_queue) = crossbeam_channel::bounded::<Job>(config.queue.max(1));
        for n in 0..threads {
            let (queue, login_queue) = (queue.clone(), login_queue.clone());
            std::thread::Builder::new()
                .name(format!("onramp-hash-{n}"))
                .spawn(move || worker(login_queue, queue, params))
                .map_err(|e| HashError::Failed(e.to_string()))?;
        }
        // A hash of a random secret: verifying against it costs what a real verify costs, so an
        // unknown user takes as long to refuse as a wrong password.
        let mut secret = [0u8; 16];
        OsRng.fill_bytes(&mut secret);
        let dummy_phc = hash_with(params, &secret, &mut vec![Block::default(); params.m_cost as usize])?;
        Ok(Self {
            inner: Arc::new(Inner {
                jobs,
                logins,
                params,
                threads,
                in_flight: AtomicUsize::new(0),
                dummy_phc,
            }),
        })
    }

    pub fn params(&self) -> HashParams {
        self.inner.params
    }

    pub fn threads(&self) -> usize {
        self.inner.threads
    }

    /// Jobs waiting or running now.
    pub fn queue_depth(&self) -> usize {
        self.inner.in_flight.load(Ordering::Relaxed)
    }

    /// Would a new hash be refused now? Checked before a signup does any other work, so a
    /// request that will be shed is answered at once.
    pub fn is_saturated(&self) -> bool {
        self.inner.jobs.is_full()
    }

    /// Argon2id PHC string of `password`.
    pub async fn hash(&self, password: &Password) -> Result<String, HashError> {
        let (reply, rx) = oneshot::channel();
        self.submit(Job::Hash { password: password.clone(), reply })?;
        self.wait(rx).await
    }

    pub async fn verify(&self, phc: &str, password: &Password) -> Result<Verified, HashError> {
        if phc.starts_with(crate::model::NO_PASSWORD) {
            // No password works (a required reset, an erased user); it takes as long to say so.
            self.verify_phc(&self.inner.dummy_phc, password).await?;
            return Ok(Verified { matches: false, needs_rehash: false });
        }
        self.verify_phc(phc, password).await
    }

    async fn verify_phc(&self, phc: &str, password: &Password) -> Result<Verified, HashError> {
        let (reply, rx) = oneshot::channel();
        self.submit(Job::Verify { phc: phc.to_owned(), password: password.clone(), reply })?;
        self.wait(rx).await
    }

    /// Spend the time of a real verification and learn nothing (for unknown users).
    pub async fn verify_dummy(&self, password: &Password) -> Result<(), HashError> {
        let phc = self.inner.dummy_phc.clone();
        self.verify(&phc, password).await.map(|_| ())
    }

    fn submit(&self, job: Job) -> Result<(), HashError> {
        self.inner.in_flight.fetch_add(1, Ordering::Relaxed);
        let lane = match job {
            Job::Hash { .. } => &self.inner.jobs,
            Job::Verify { .. } => &self.inner.logins,
        };
        match lane.try_send(job) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => {
                self.inner.in_flight.fetch_sub(1, Ordering::Relaxed);
                Err(HashError::Busy)
            }
            Err(TrySendError::Disconnected(_)) => {
                self.inner.in_flight.fetch_sub(1, Ordering::Relaxed);
                Err(HashError::Failed("hashing pool stopped".into()))
            }
        }
    }

    async fn wait<T>(&self, rx: oneshot::Receiver<Result<T, HashError>>) -> Result<T, HashError> {
        let result = rx.await.unwrap_or_else(|_| Err(HashError::Failed("hashing thread ended".into())));
        self.inner.in_flight.fetch_sub(1, Ordering::Relaxed);
        result
    }
}

fn argon(params: HashParams) -> Result<Argon2<'static>, HashError> {
    let p = Params::new(params.m_cost, params.t_cost, params.p_cost, Some(32))
        .map_err(|e| HashError::Failed(e.to_string()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, p))
}

fn worker(logins: Receiver<Job>, queue: Receiver<Job>, params: HashParams) {
    yield_to_requests();
    // Allocated on the first job, then reused for every job of these parameters.
    let mut memory: Vec<Block> = Vec::new();
    loop {
        // A waiting login goes first; otherwise whichever comes.
        let job = match logins.try_recv() {
            Ok(job) => Ok(job),
            Err(_) => crossbeam_channel::select! {
                recv(logins) -> job => job,
                recv(queue) -> job => job,
            },
        };
        let Ok(job) = job else { return };
        if memory.is_empty() {
            memory = vec![Block::default(); params.m_cost as usize];
        }
        match job {
            Job::Hash { password, reply } => {
                let _ = reply.send(hash_with(params, password.expose().as_bytes(), &mut memory));
            }
            Job::Verify { phc, password, reply } => {
                let _ = reply.send(verify_with(params, &phc, password.expose().as_bytes(), &mut memory));
            }
        }
    }
}

/// Hashing is the one long, CPU-bound job: its threads run at a lower priority (nice 5), so
/// the threads that serve requests take a core from a hash the moment they have work. A request
/// answered at once (a shed signup, a health check, a token redeemed) does not wait for a hash
/// to finish its time slice; with no requests to serve, hashes have the cores to themselves.
fn yield_to_requests() {
    use thread_priority::{ThreadPriority, ThreadPriorityValue};
    // The crate maps 0..=99 onto nice 19..=-20; 35 is nice 5.
    let lowered = ThreadPriorityValue::try_from(35u8).map_err(|e| e.to_string()).and_then(|nice_5| {
        thread_priority::set_current_thread_priority(ThreadPriority::Crossplatform(nice_5))
            .map_err(|e| format!("{e:?}"))
    });
    if let Err(error) = lowered {
        tracing::debug!(%error, "could not lower the hash thread's priority");
    }
}

fn hash_with(params: HashParams, password: &[u8], memory: &mut [Block]) -> Result<String, HashError> {
    let mut salt = [0u8; 16];
    OsRng.fill_bytes(&mut salt);
    let mut out = [0u8; 32];
    argon(params)?
        .hash_password_into_with_memory(password, &salt, &mut out, &mut *memory)
        .map_err(|e| HashError::Failed(e.to_string()))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| HashError::Failed(e.to_string()))?;
    let out = Output::new(&out).map_err(|e| HashError::Failed(e.to_string()))?;
    Ok(format!(
        "$argon2id$v=19$m={},t={},p={}${}${}",
        params.m_cost,
        params.t_cost,
        params.p_cost,
        salt.as_str(),
        out
    ))
}

fn verify_with(
    configured: HashParams,
    phc: &str,
    password: &[u8],
    memory: &mut Vec<Block>,
) -> Result<Verified, HashError> {
    let bad = |e: &dyn std::fmt::Display| HashError::Failed(format!("stored hash unreadable: {e}"));
    if crate::foreign_hash::is_foreign(phc) {
        // An imported user's first login: verified the old way, then rehashed by the caller.
        let matches = crate::foreign_hash::verify(phc, password).map_err(|e| bad(&e))?;
        return Ok(Verified { matches, needs_rehash: true });
    }
    let parsed = PasswordHash::new(phc).map_err(|e| bad(&e))?;
    if parsed.algorithm.as_str() != "argon2id" {
        return Err(HashError::Failed("stored hash is not argon2id".into()));
    }
    let params = Params::try_from(&parsed).map_err(|e| bad(&e))?;
    let stored = HashParams { m_cost: params.m_cost(), t_cost: params.t_cost(), p_cost: params.p_cost() };
    let expected = parsed.hash.ok_or_else(|| HashError::Failed("stored hash has no output".into()))?;
    let mut salt_buf = [0u8; 64];
    let salt = parsed
        .salt
        .ok_or_else(|| HashError::Failed("stored hash has no salt".into()))?
        .decode_b64(&mut salt_buf)
        .map_err(|e| bad(&e))?;
    let mut out = vec![0u8; expected.len()];
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    let mut other;
    let blocks: &mut [Block] = if stored.m_cost == configured.m_cost {
        if memory.is_empty() {
            *memory = vec![Block::default(); configured.m_cost as usize];
        }
        memory
    } else {
        other = vec![Block::default(); stored.m_cost as usize];
        &mut other
    };
    argon
        .hash_password_into_with_memory(password, salt, &mut out, blocks)
        .map_err(|e| HashError::Failed(e.to_string()))?;
    let actual = Output::new(&out).map_err(|e| bad(&e))?;
    // Output's equality is constant time.
    let matches = actual == expected;
    let needs_rehash = stored.m_cost < configured.m_cost
        || stored.t_cost < configured.t_cost
        || stored.p_cost != configured.p_cost;
    Ok(Verified { matches, needs_rehash })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> HasherConfig {
        HasherConfig { params: HashParams { m_cost: 64, t_cost: 1, p_cost: 1 }, threads: 1, queue: 4 }
    }

    #[tokio::test]
    async fn a_hash_verifies_and_a_wrong_password_does_not() {
        let h = PasswordHasher::new(small()).unwrap();
        let pw = Password::for_verification("correct horse");
        let phc = h.hash(&pw).await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{phc}");
        assert!(h.verify(&phc, &pw).await.unwrap().matches);
        assert!(!h.verify(&phc, &Password::for_verification("wrong horse")).await.unwrap().matches);
    }

    #[tokio::test]
    async fn default_parameters_follow_owasp_minimums() {
        let h = PasswordHasher::new(HasherConfig { threads: 1, ..Default::default() }).unwrap();
        let phc = h.hash(&Password::for_verification("some password")).await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        // 16-byte salt = 22 base64 characters.
        assert_eq!(phc.split('$').nth(4).unwrap().len(), 22);
    }

    #[tokio::test]
    async fn weaker_stored_parameters_ask_for_a_rehash() {
        let weak = PasswordHasher::new(small()).unwrap();
        let pw = Password::for_verification("correct horse");
        let phc = weak.hash(&pw).await.unwrap();
        let strong = PasswordHasher::new(HasherConfig {
            params: HashParams { m_cost: 128, t_cost: 2, p_cost: 1 },
            ..small()
        })
        .unwrap();
        let v = strong.verify(&phc, &pw).await.unwrap();
        assert!(v.matches && v.needs_rehash);
    }

    #[tokio::test]
    async fn a_full_queue_refuses_at_once() {
        let h = PasswordHasher::new(HasherConfig {
            params: HashParams { m_cost: 19_456, t_cost: 4, p_cost: 1 },
            threads: 1,
            queue: 1,
        })
        .unwrap();
        let pw = Password::for_verification("correct horse");
        let jobs: Vec<_> = (0..8)
            .map(|_| {
                let h = h.clone();
                let pw = pw.clone();
                tokio::spawn(async move { h.hash(&pw).await })
            })
            .collect();
        let mut busy = 0;
        for j in jobs {
            if j.await.unwrap() == Err(HashError::Busy) {
                busy += 1;
            }
        }
        assert!(busy >= 1, "no job was refused");
        assert_eq!(h.queue_depth(), 0);
    }

    /// Each of this process's threads: its name and nice value (Linux's `/proc`).
    #[cfg(target_os = "linux")]
    fn threads_and_nice() -> Vec<(String, i64)> {
        let tasks = std::fs::read_dir("/proc/self/task").unwrap();
        tasks
            .filter_map(|task| {
                let dir = task.ok()?.path();
                let comm = std::fs::read_to_string(dir.join("comm")).ok()?;
                // `stat` is `pid (comm) state ...`; nice is the 19th field, the 17th after `)`.
                let stat = std::fs::read_to_string(dir.join("stat")).ok()?;
                let nice = stat.rsplit_once(')')?.1.split_whitespace().nth(16)?.parse().ok()?;
                Some((comm.trim().to_owned(), nice))
            })
            .collect()
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn hash_threads_run_below_the_threads_that_serve_requests() {
        let h = PasswordHasher::new(HasherConfig { threads: 2, ..small() }).unwrap();
        // Two hashes at once: both threads have started and set their priority.
        let pw = Password::for_verification("correct horse");
        let (a, b) = tokio::join!(h.hash(&pw), h.hash(&pw));
        assert!(a.is_ok() && b.is_ok());
        let threads = threads_and_nice();
        let (hashers, others): (Vec<_>, Vec<_>) =
            threads.iter().partition(|(name, _)| name.starts_with("onramp-hash-"));
        assert!(hashers.iter().any(|(name, _)| name == "onramp-hash-1"), "{threads:?}");
        assert!(hashers.iter().all(|(_, nice)| *nice == 5), "hash threads: {hashers:?}");
        assert!(others.iter().all(|(_, nice)| *nice == 0), "the other threads are left alone: {others:?}");
    }

    #[tokio::test]
    async fn a_flood_of_new_hashes_neither_refuses_nor_delays_a_login() {
        let h = PasswordHasher::new(HasherConfig {
            params: HashParams { m_cost: 19_456, t_cost: 3, p_cost: 1 },
            threads: 1,
            queue: 2,
        })
        .unwrap();
        let pw = Password::for_verification("correct horse");
        let phc = h.hash(&pw).await.unwrap();
        let (done, mut order) = tokio::sync::mpsc::unbounded_channel();
        // Signups: one running and two queued fill the pool; more are refused.
        let mut signups = Vec::new();
        for n in 0..3 {
            let (hasher, pw, done) = (h.clone(), pw.clone(), done.clone());
            signups.push(tokio::spawn(async move {
                let r = hasher.hash(&pw).await;
                let _ = done.send(format!("signup {n}"));
                r
            }));
            // The first is taken by the thread before the others queue.
            for _ in 0..400 {
                let taken = h.queue_depth() == 1 && h.inner.jobs.is_empty();
                if n > 0 || taken {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        }
        for _ in 0..400 {
            if h.queue_depth() == 3 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        assert!(h.is_saturated(), "the signup lane is full");
        assert_eq!(h.hash(&pw).await, Err(HashError::Busy));
        // A login now: accepted, and served before the signups still waiting.
        let verified = h.verify(&phc, &pw).await.unwrap();
        assert!(verified.matches);
        let _ = done.send("login".to_owned());
        for s in signups {
            assert!(s.await.unwrap().is_ok());
        }
        drop(done);
        let mut seen = Vec::new();
        while let Some(event) = order.recv().await {
            seen.push(event);
        }
        let login = seen.iter().position(|e| e == "login").unwrap();
        assert!(login <= 1, "the login waited for queued signups: {seen:?}");
    }
}
