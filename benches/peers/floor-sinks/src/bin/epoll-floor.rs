//! One thread, one edge-triggered epoll instance, `recv`/`send` per readiness:
//! the system calls an epoll server cannot avoid (per command one `recv` and one
//! `send`; `epoll_wait` shared by every connection ready at once).
//! Assumes a reply always fits the socket's send buffer (true for smtp-source).
use floor_sinks::{listen, nodelay, Session, GREETING};
use std::os::fd::AsRawFd;

const LISTENER: u64 = u64::MAX;

fn main() {
    let listener = listen();
    listener.set_nonblocking(true).expect("nonblocking");
    let lfd = listener.as_raw_fd();
    let mut sessions: Vec<Option<Session>> = Vec::new();
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 256];
    let mut buf = vec![0u8; 65536];
    let mut out = Vec::with_capacity(4096);
    // SAFETY (every block below): plain system calls on descriptors this loop
    // owns, with pointers to live buffers of the lengths passed.
    let ep = unsafe { libc::epoll_create1(0) };
    let mut ev = libc::epoll_event {
        events: libc::EPOLLIN as u32,
        u64: LISTENER,
    };
    unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, lfd, &mut ev) };
    loop {
        let n = unsafe { libc::epoll_wait(ep, events.as_mut_ptr(), events.len() as i32, -1) };
        for e in &events[..n.max(0) as usize] {
            if e.u64 == LISTENER {
                loop {
                    let null = std::ptr::null_mut();
                    let fd = unsafe { libc::accept4(lfd, null, null as _, libc::SOCK_NONBLOCK) };
                    if fd < 0 {
                        break;
                    }
                    nodelay(fd);
                    let flags = libc::EPOLLIN | libc::EPOLLET | libc::EPOLLRDHUP;
                    let mut ev = libc::epoll_event {
                        events: flags as u32,
                        u64: fd as u64,
                    };
                    unsafe {
                        libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, fd, &mut ev);
                        libc::send(
                            fd,
                            GREETING.as_ptr().cast(),
                            GREETING.len(),
                            libc::MSG_NOSIGNAL,
                        );
                    }
                    if sessions.len() <= fd as usize {
                        sessions.resize_with(fd as usize + 1, || None);
                    }
                    sessions[fd as usize] = Some(Session::default());
                }
                continue;
            }
            let fd = e.u64 as i32;
            let Some(session) = sessions[fd as usize].as_mut() else {
                continue;
            };
            let mut close = false;
            loop {
                let r = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
                if r <= 0 {
                    // 0: end of stream; -1: EAGAIN (drained) or an error.
                    close = r == 0
                        || std::io::Error::last_os_error().kind() != std::io::ErrorKind::WouldBlock;
                    break;
                }
                out.clear();
                session.feed(&buf[..r as usize], &mut out);
                if !out.is_empty() {
                    unsafe { libc::send(fd, out.as_ptr().cast(), out.len(), libc::MSG_NOSIGNAL) };
                }
                if session.quit {
                    close = true;
                    break;
                }
                if (r as usize) < buf.len() {
                    break; // a short read drained the socket: wait for the next edge
                }
            }
            if close {
                sessions[fd as usize] = None;
                unsafe { libc::close(fd) };
            }
        }
    }
}
