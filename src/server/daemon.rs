//! Process set-up that memcached does around its event loops: file and core
//! limits (`-c`, `-r`), `-k` mlockall, `-d` daemonize with `-P` pid file, and
//! `-u` dropping root privileges once the listeners are bound.

use crate::config::Config;
use std::io;

fn raise_limit(resource: libc::__rlimit_resource_t, want: Option<u64>) {
    // SAFETY: getrlimit/setrlimit on a local struct.
    unsafe {
        let mut rl: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(resource, &mut rl) != 0 {
            return;
        }
        let target = match want {
            Some(w) => w.min(rl.rlim_max),
            None => rl.rlim_max,
        };
        if rl.rlim_cur < target {
            rl.rlim_cur = target;
            libc::setrlimit(resource, &rl);
        }
    }
}

/// Runs before any thread exists: limits, daemonizing, pid file, mlock.
pub fn prepare_process(c: &Config) -> io::Result<()> {
    // One fd per connection plus listeners, pipes and the epoll fds.
    raise_limit(
        libc::RLIMIT_NOFILE,
        Some(c.conn_limit as u64 + 64 + 4 * c.threads as u64),
    );
    if c.enable_coredumps {
        raise_limit(libc::RLIMIT_CORE, None);
    }
    if c.daemonize {
        // SAFETY: no other thread has been started yet.
        if unsafe { libc::daemon(1, 0) } != 0 {
            return Err(io::Error::last_os_error());
        }
        if let Some(p) = &c.pidfile {
            std::fs::write(p, format!("{}\n", std::process::id()))?;
        }
    } else if c.pidfile.is_some() {
        log::info!("-P is only used with -d (as in memcached)");
    }
    if c.lock_memory {
        // SAFETY: plain syscall.
        if unsafe { libc::mlockall(libc::MCL_CURRENT | libc::MCL_FUTURE) } != 0 {
            log::warn!(
                "warning: -k invalid, mlockall() failed: {}",
                io::Error::last_os_error()
            );
        }
    }
    if c.large_pages {
        log::info!("-L (large pages) accepted: memcrab already asks for transparent huge pages (-o no_hugepages turns that off)");
    }
    if c.sasl {
        log::warn!("-S (SASL) accepted but not supported; connections are not authenticated");
    }
    if c.memory_file.is_some() {
        log::warn!("-e (memory file) accepted but not supported; the cache is not restartable");
    }
    for o in &c.unsupported_options {
        log::warn!("-o {o}: accepted but not supported by memcrab; ignored");
    }
    Ok(())
}

/// `-u`: when running as root and the user exists, switch to it. memcached
/// refuses to run as root without `-u`; memcrab deliberately allows it.
pub fn drop_privileges(c: &Config) {
    // SAFETY: getuid has no preconditions.
    if unsafe { libc::getuid() } != 0 {
        if c.user.is_some() {
            log::debug!("-u ignored: not running as root");
        }
        return;
    }
    let Some(user) = &c.user else { return };
    let Ok(name) = std::ffi::CString::new(user.as_str()) else {
        log::warn!("-u {user}: bad user name, staying root");
        return;
    };
    // SAFETY: getpwnam returns a pointer into static storage or null; we read
    // it immediately, before any other passwd call.
    unsafe {
        let pw = libc::getpwnam(name.as_ptr());
        if pw.is_null() {
            log::warn!("-u {user}: no such user, staying root");
            return;
        }
        let (uid, gid) = ((*pw).pw_uid, (*pw).pw_gid);
        if uid == 0 {
            return;
        }
        if libc::setgroups(0, std::ptr::null()) != 0
            || libc::setgid(gid) != 0
            || libc::setuid(uid) != 0
        {
            log::warn!(
                "-u {user}: failed to assume identity: {}",
                io::Error::last_os_error()
            );
        } else {
            log::info!("running as user {user}");
        }
    }
}
