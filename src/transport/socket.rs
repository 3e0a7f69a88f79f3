//! The socket under every request: a TCP transport for ureq that writes a
//! whole request at once, sets socket options only when they change, and
//! resolves IP literals without a thread.
//!
//! ureq's own TCP transport writes headers and body as two segments,
//! resets the socket's time-outs on every read (the remaining time shrinks
//! from call to call), switches a kept connection to non-blocking mode and
//! back to check it is alive, and its resolver starts a thread per request
//! even for `127.0.0.1`. Each is a syscall or a thread on every call; here
//! a call in steady state is one write and the reads of its answer.

use std::collections::HashMap;
use std::fmt;
use std::io::{self, Read, Write};
use std::mem::MaybeUninit;
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use ureq::config::Config;
use ureq::http::Uri;
use ureq::unversioned::resolver::{ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, Either, LazyBuffers, NextTimeout, ShutdownHandle,
    Transport,
};

/// Read time-outs are set in steps of this much (rounded up), so that the
/// shrinking remaining time of a request does not mean a syscall per read.
const TIMEOUT_STEP: Duration = Duration::from_millis(250);

/// Opens plain TCP connections (TLS is layered on top by ureq's rustls
/// connector).
#[derive(Debug, Default)]
pub struct SocketConnector;

impl<In: Transport> Connector<In> for SocketConnector {
    type Out = Either<In, Socket>;

    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<In>,
    ) -> Result<Option<Self::Out>, ureq::Error> {
        if let Some(already) = chained {
            return Ok(Some(Either::A(already)));
        }
        let connect_timeout = details.timeout.not_zero().map(|t| *t);
        let mut last = None;
        for addr in details.addrs.iter() {
            let attempt = match connect_timeout {
                Some(t) => TcpStream::connect_timeout(addr, t),
                None => TcpStream::connect(addr),
            };
            match attempt {
                Ok(stream) => {
                    stream.set_nodelay(true)?;
                    let stream = Arc::new(stream);
                    // So that the agent can cut it from another thread
                    // (a stream read by a thread of its own is stopped so).
                    (details.register_shutdown)(
                        Arc::downgrade(&stream) as Weak<dyn ShutdownHandle>
                    )?;
                    let config = details.config;
                    let buffers =
                        LazyBuffers::new(config.input_buffer_size(), config.output_buffer_size());
                    return Ok(Some(Either::B(Socket {
                        stream,
                        buffers,
                        pending: Vec::new(),
                        read_timeout: None,
                        answered: false,
                        abandoned: false,
                    })));
                }
                Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                    last = Some(ureq::Error::Timeout(ureq::Timeout::Connect))
                }
                Err(e) => last = Some(e.into()),
            }
        }
        Err(last.unwrap_or(ureq::Error::HostNotFound))
    }
}

/// One TCP connection.
pub struct Socket {
    stream: Arc<TcpStream>,
    buffers: LazyBuffers,
    /// Request bytes not yet written: sent in one write when the answer
    /// is awaited.
    pending: Vec<u8>,
    /// The read time-out set on the socket (`None`: not set yet).
    read_timeout: Option<Option<Duration>>,
    /// An answer was read since the last liveness probe.
    answered: bool,
    /// A request on it went unanswered in time: it is closed with a reset,
    /// so that a member that has not read the request yet (frozen: its
    /// kernel holds the bytes) never will — the kernel drops unread data
    /// on a reset — and a write given up on cannot be carried out later.
    abandoned: bool,
}

impl Drop for Socket {
    fn drop(&mut self) {
        if self.abandoned {
            let _ = socket2::SockRef::from(&*self.stream).set_linger(Some(Duration::ZERO));
        }
    }
}

impl fmt::Debug for Socket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Socket")
            .field("peer", &self.stream.peer_addr().ok())
            .finish()
    }
}

impl Socket {
    /// The reads of [`Socket::await_input`], until bytes come, the end, or
    /// an error.
    fn read_answer(
        &mut self,
        timeout: NextTimeout,
        check_every: Option<Duration>,
        started: Instant,
    ) -> Result<usize, ureq::Error> {
        let amount = loop {
            let input = self.buffers.input_append_buf();
            match (&*self.stream).read(input) {
                // A signal is no reason to fail: read on, within the time.
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                    if time_left(timeout, started).is_some_and(|l| l.is_zero()) {
                        return Err(ureq::Error::Timeout(timeout.reason));
                    }
                }
                Err(e)
                    if check_every.is_some()
                        && matches!(
                            e.kind(),
                            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                        ) =>
                {
                    if time_left(timeout, started).is_some_and(|l| l.is_zero()) {
                        return Err(ureq::Error::Timeout(timeout.reason));
                    }
                    if !run_idle_check() {
                        return Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            "the member stopped serving while we waited",
                        )
                        .into());
                    }
                    if let Some(every) = check_every {
                        self.set_read_timeout_to(Some(check_read_timeout(timeout, every, started)))
                            .map_err(|e| timed_out(e, timeout))?;
                    }
                }
                other => break other.map_err(|e| timed_out(e, timeout))?,
            }
        };
        Ok(amount)
    }

    fn flush_pending(&mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        // write_all goes on after an interrupted write (EINTR).
        let result = (&*self.stream).write_all(&self.pending);
        self.pending.clear();
        result
    }

    /// Sets the read time-out for `timeout`, rounded up to a step, when
    /// that differs from what is set.
    fn set_read_timeout(&mut self, timeout: NextTimeout) -> io::Result<()> {
        let wanted = timeout.not_zero().map(|t| {
            let steps = t.as_nanos().div_ceil(TIMEOUT_STEP.as_nanos()).max(1);
            TIMEOUT_STEP * u32::try_from(steps).unwrap_or(u32::MAX)
        });
        self.set_read_timeout_to(wanted)
    }

    fn set_read_timeout_to(&mut self, wanted: Option<Duration>) -> io::Result<()> {
        if self.read_timeout != Some(wanted) {
            self.stream.set_read_timeout(wanted)?;
            self.read_timeout = Some(wanted);
        }
        Ok(())
    }
}

/// What is left of `timeout` since `started` (`None`: no time-out).
fn time_left(timeout: NextTimeout, started: Instant) -> Option<Duration> {
    timeout
        .not_zero()
        .map(|t| t.saturating_sub(started.elapsed()))
}

/// The read time-out of a wait with a liveness check every `every`: the
/// check's period, within what is left of the wait's own time-out.
fn check_read_timeout(timeout: NextTimeout, every: Duration, started: Instant) -> Duration {
    match time_left(timeout, started) {
        Some(left) => every.min(left).max(Duration::from_millis(1)),
        None => every,
    }
}

fn timed_out(e: io::Error, timeout: NextTimeout) -> ureq::Error {
    if matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    ) {
        ureq::Error::Timeout(timeout.reason)
    } else {
        e.into()
    }
}

impl Transport for Socket {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    fn transmit_output(&mut self, amount: usize, _: NextTimeout) -> Result<(), ureq::Error> {
        let output = &self.buffers.output()[..amount];
        self.pending.extend_from_slice(output);
        Ok(())
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        let timeout = timeout.for_read();
        // A wait with a liveness check installed (a watch, a lock wait, a
        // write that may not be sent again) wakes up now and then to run
        // it, within its own time-out when it has one.
        let check_every = IDLE_CHECK.with(|c| c.borrow().as_ref().map(|c| c.every));
        let started = Instant::now();
        match check_every {
            Some(every) => {
                self.set_read_timeout_to(Some(check_read_timeout(timeout, every, started)))
            }
            None => self.set_read_timeout(timeout),
        }
        .and_then(|()| self.flush_pending())
        .map_err(|e| timed_out(e, timeout))?;
        let read = self.read_answer(timeout, check_every, started);
        if read.is_err() {
            self.abandoned = true;
        }
        let amount = read?;
        self.buffers.input_appended(amount);
        self.answered = true;
        Ok(amount > 0)
    }

    fn is_open(&mut self) -> bool {
        // ureq asks twice per request: when the connection goes back to
        // the pool right after its answer was read (ureq itself checks
        // that nothing was left unread), and when it is taken out again,
        // maybe much later. Only the second can find something new.
        if std::mem::take(&mut self.answered) {
            return self.pending.is_empty();
        }
        // One peek that does not wait: nothing to read means alive; the
        // end of the stream, an error or bytes nobody asked for mean not.
        let mut byte = [MaybeUninit::<u8>::uninit()];
        let peeked = socket2::SockRef::from(&*self.stream)
            .recv_with_flags(&mut byte, libc::MSG_PEEK | libc::MSG_DONTWAIT);
        self.pending.is_empty() && matches!(peeked, Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }
}

/// A check run while this thread waits without end on a member (a watch
/// stream, a lock wait): a member cut off from the rest of its cluster
/// keeps such a wait open and silent for ever, so the waiter asks now and
/// then whether its member still serves, and gives the wait up if not.
struct IdleCheck {
    every: Duration,
    still_serving: Box<dyn FnMut() -> bool>,
}

thread_local! {
    static IDLE_CHECK: std::cell::RefCell<Option<IdleCheck>> = const { std::cell::RefCell::new(None) };
}

/// Runs `wait` with `still_serving` asked every `every` of silence on an
/// endless read; when it answers false, the read fails (as a time-out) and
/// `wait` sees its stream cut.
pub fn with_idle_check<R>(
    every: Duration,
    still_serving: impl FnMut() -> bool + 'static,
    wait: impl FnOnce() -> R,
) -> R {
    let before = IDLE_CHECK.with(|c| {
        c.replace(Some(IdleCheck {
            every,
            still_serving: Box::new(still_serving),
        }))
    });
    struct Restore(Option<Option<IdleCheck>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let before = self.0.take().flatten();
            IDLE_CHECK.with(|c| *c.borrow_mut() = before);
        }
    }
    let _restore = Restore(Some(before));
    wait()
}

/// Runs the installed check (taken out while it runs: it sends a request
/// of its own, whose reads must not run it again).
fn run_idle_check() -> bool {
    let Some(mut check) = IDLE_CHECK.with(|c| c.borrow_mut().take()) else {
        return true;
    };
    let serving = (check.still_serving)();
    IDLE_CHECK.with(|c| *c.borrow_mut() = Some(check));
    serving
}

/// Resolves host names: an IP literal (what etcd member lists usually
/// hold) at once, a name once a minute at most, in the calling thread.
#[derive(Debug, Default)]
pub struct CachingResolver {
    names: Mutex<HashMap<String, (Instant, Vec<SocketAddr>)>>,
}

/// How long a resolved name is used before asking again.
const NAME_TTL: Duration = Duration::from_secs(60);

impl Resolver for CachingResolver {
    fn resolve(
        &self,
        uri: &Uri,
        _: &Config,
        _: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let authority = uri.authority().ok_or(ureq::Error::HostNotFound)?;
        let default_port = if uri.scheme_str() == Some("https") {
            443
        } else {
            80
        };
        let port = authority.port_u16().unwrap_or(default_port);
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        let mut found = self.empty();
        if let Ok(ip) = host.parse::<IpAddr>() {
            found.push(SocketAddr::new(ip, port));
            return Ok(found);
        }
        let key = format!("{host}:{port}");
        let cached = self
            .names
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            .filter(|(when, _)| when.elapsed() < NAME_TTL)
            .map(|(_, addrs)| addrs.clone());
        let addrs = match cached {
            Some(addrs) => addrs,
            None => {
                let addrs: Vec<SocketAddr> = (host, port).to_socket_addrs()?.collect();
                self.names
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(key, (Instant::now(), addrs.clone()));
                addrs
            }
        };
        for addr in addrs.into_iter().take(16) {
            found.push(addr);
        }
        if found.is_empty() {
            return Err(ureq::Error::HostNotFound);
        }
        Ok(found)
    }
}
