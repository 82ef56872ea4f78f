//! The handle-based C API (dialer, client, server) declared as a C program sees it, for
//! tests that call it exactly the way C does: through raw pointers, from any thread.

use libc::{c_char, c_int, c_uint, c_void, sockaddr, socklen_t};
use resock::dial::Stats;
use resock::server::AcceptStats;

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct DialConfig {
    pub struct_size: usize,
    pub host: *const c_char,
    pub port: *const c_char,
    pub connect_timeout_ms: c_int,
    pub backoff_initial_ms: c_int,
    pub backoff_max_ms: c_int,
    pub backoff_multiplier: f64,
    pub backoff_jitter: f64,
    pub stable_after_ms: c_int,
    pub max_attempts: c_uint,
    pub nodelay: c_int,
    pub keepalive_idle_s: c_int,
    pub keepalive_intvl_s: c_int,
    pub keepalive_cnt: c_int,
    pub user_timeout_ms: c_int,
}

pub type OnConnect = unsafe extern "C" fn(fd: c_int, user: *mut c_void) -> c_int;
pub type OnRecord = unsafe extern "C" fn(rec: *const c_void, len: usize, user: *mut c_void);
/// ABI 2's session: the fd, the client's reader, the user pointer; returns 0 or an errno.
pub type SessionFn = unsafe extern "C" fn(fd: c_int, r: *mut c_void, user: *mut c_void) -> c_int;
pub type OnIdle = unsafe extern "C" fn(fd: c_int, user: *mut c_void) -> c_int;
pub type OnState = unsafe extern "C" fn(
    state: c_int,
    attempt: c_uint,
    next_delay_ms: i64,
    errnum: c_int,
    user: *mut c_void,
);
pub type OnDisconnect =
    unsafe extern "C" fn(cls: c_int, errnum: c_int, lived_ms: i64, user: *mut c_void);
pub type HandlerFn =
    unsafe extern "C" fn(fd: c_int, peer: *const sockaddr, len: socklen_t, user: *mut c_void);
pub type RequestHandlerFn = unsafe extern "C" fn(
    fd: c_int,
    peer: *const sockaddr,
    len: socklen_t,
    user: *mut c_void,
) -> c_int;

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ClientConfig {
    pub struct_size: usize,
    pub dial: DialConfig,
    pub record_size: usize,
    pub on_connect: Option<OnConnect>,
    pub on_record: Option<OnRecord>,
    pub session: Option<SessionFn>,
    pub on_disconnect: Option<OnDisconnect>,
    pub user: *mut c_void,
    pub idle_timeout_ms: c_int,
    pub on_idle: Option<OnIdle>,
    pub handshake_timeout_ms: c_int,
    pub on_state: Option<OnState>,
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ServerConfig {
    pub struct_size: usize,
    pub host: *const c_char,
    pub port: *const c_char,
    pub backlog: c_int,
    pub max_connections: c_uint,
    pub nodelay: c_int,
    pub handler: Option<HandlerFn>,
    pub handler_closes_fd: c_int,
    pub user: *mut c_void,
    pub defer_accept_s: c_int,
    pub idle_timeout_ms: c_int,
    pub max_per_peer: c_uint,
    pub at_cap: c_int,
    pub request_handler: Option<RequestHandlerFn>,
    pub pool_threads: c_uint,
}

/// Opaque handles.
pub enum Dialer {}
pub enum Client {}
pub enum Server {}

unsafe extern "C" {
    pub fn resock_dial_config_init(cfg: *mut DialConfig);
    pub fn resock_dialer_new(cfg: *const DialConfig) -> *mut Dialer;
    pub fn resock_dial(d: *mut Dialer) -> c_int;
    pub fn resock_hangup(d: *mut Dialer, fd: c_int) -> c_int;
    pub fn resock_dialer_stop(d: *mut Dialer);
    pub fn resock_dialer_reset(d: *mut Dialer);
    pub fn resock_dialer_stats(d: *const Dialer, out: *mut Stats);
    pub fn resock_dialer_free(d: *mut Dialer);

    pub fn resock_client_config_init(cfg: *mut ClientConfig);
    pub fn resock_client_start(cfg: *const ClientConfig) -> *mut Client;
    pub fn resock_client_send(c: *mut Client, buf: *const c_void, n: usize) -> c_int;
    pub fn resock_client_send_opts(
        c: *mut Client,
        buf: *const c_void,
        n: usize,
        opts: *const super::IoOpts,
        done: *mut usize,
    ) -> isize;
    pub fn resock_client_reset(c: *mut Client);
    pub fn resock_client_stop(c: *mut Client);
    pub fn resock_client_join(c: *mut Client, timeout_ms: c_int) -> c_int;
    pub fn resock_client_stats(c: *const Client, out: *mut Stats);
    pub fn resock_client_free(c: *mut Client);

    pub fn resock_server_config_init(cfg: *mut ServerConfig);
    pub fn resock_server_new(cfg: *const ServerConfig) -> *mut Server;
    pub fn resock_server_port(s: *const Server) -> c_int;
    pub fn resock_server_run(s: *mut Server) -> c_int;
    pub fn resock_server_start(s: *mut Server) -> c_int;
    pub fn resock_server_stop(s: *mut Server);
    pub fn resock_server_join(s: *mut Server, grace_ms: c_int) -> c_int;
    pub fn resock_server_stats(s: *const Server, out: *mut AcceptStats);
    pub fn resock_server_free(s: *mut Server);

    pub fn resock_set_log(
        f: Option<unsafe extern "C" fn(level: c_int, msg: *const c_char, user: *mut c_void)>,
        user: *mut c_void,
    );
}

/// The defaults of resock_dial_config_init for `host` and `port` (C strings that must
/// outlive the config's use).
pub fn dial_config(host: &std::ffi::CStr, port: &std::ffi::CStr) -> DialConfig {
    let mut cfg = std::mem::MaybeUninit::<DialConfig>::uninit();
    // SAFETY: init writes the whole struct.
    let mut cfg = unsafe {
        resock_dial_config_init(cfg.as_mut_ptr());
        cfg.assume_init()
    };
    cfg.host = host.as_ptr();
    cfg.port = port.as_ptr();
    cfg
}

/// The defaults of resock_client_config_init with `dial`.
pub fn client_config(dial: DialConfig) -> ClientConfig {
    let mut cfg = std::mem::MaybeUninit::<ClientConfig>::uninit();
    // SAFETY: init writes the whole struct.
    let mut cfg = unsafe {
        resock_client_config_init(cfg.as_mut_ptr());
        cfg.assume_init()
    };
    cfg.dial = dial;
    cfg
}

/// The defaults of resock_server_config_init on 127.0.0.1, port 0, with `handler`.
pub fn server_config(handler: HandlerFn, user: *mut c_void) -> ServerConfig {
    let mut cfg = std::mem::MaybeUninit::<ServerConfig>::uninit();
    // SAFETY: init writes the whole struct.
    let mut cfg = unsafe {
        resock_server_config_init(cfg.as_mut_ptr());
        cfg.assume_init()
    };
    cfg.host = c"127.0.0.1".as_ptr();
    cfg.port = c"0".as_ptr();
    cfg.handler = Some(handler);
    cfg.user = user;
    cfg
}

/// A snapshot of a dialer's counters.
pub fn dialer_stats(d: *const Dialer) -> Stats {
    let mut out = Stats::default();
    // SAFETY: a live dialer and a writable out.
    unsafe { resock_dialer_stats(d, &mut out) };
    out
}

/// The kernel thread id of the calling thread.
pub fn gettid() -> libc::pid_t {
    // SAFETY: no arguments.
    unsafe { libc::gettid() }
}

/// Whether thread `tid` of this process still exists.
pub fn thread_alive(tid: libc::pid_t) -> bool {
    std::path::Path::new(&format!("/proc/self/task/{tid}")).exists()
}
