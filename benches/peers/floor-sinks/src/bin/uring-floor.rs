//! One thread, one io_uring (single issuer, deferred task work): a multishot
//! accept, one `recv` armed per connection and one `send` per batch of replies,
//! all submitted with a single `io_uring_enter` per turn of the loop; no epoll
//! and no per-command system call.
use floor_sinks::{listen, nodelay, Session, GREETING};
use io_uring::{cqueue, opcode, squeue, types, IoUring};
use std::os::fd::AsRawFd;

const ACCEPT: u64 = u64::MAX;
const READ_BUF: usize = 16384;

struct Conn {
    session: Session,
    /// Read into by the armed `recv`; boxed so it never moves.
    rbuf: Box<[u8]>,
    /// The reply being sent (must stay put until its completion).
    wbuf: Vec<u8>,
    /// Replies produced while a send is in flight.
    queued: Vec<u8>,
    sending: bool,
    closing: bool,
}

fn tag(fd: i32, send: bool) -> u64 {
    (fd as u64) << 1 | send as u64
}

fn recv(fd: i32, c: &mut Conn) -> squeue::Entry {
    opcode::Recv::new(types::Fd(fd), c.rbuf.as_mut_ptr(), READ_BUF as u32)
        .build()
        .user_data(tag(fd, false))
}

fn send(fd: i32, c: &mut Conn) -> squeue::Entry {
    c.sending = true;
    opcode::Send::new(types::Fd(fd), c.wbuf.as_ptr(), c.wbuf.len() as u32)
        .flags(libc::MSG_NOSIGNAL)
        .build()
        .user_data(tag(fd, true))
}

fn close(conns: &mut [Option<Box<Conn>>], fd: i32) {
    conns[fd as usize] = None;
    // SAFETY: the descriptor is ours and nothing is in flight on it.
    unsafe { libc::close(fd) };
}

fn main() {
    let listener = listen();
    let lfd = listener.as_raw_fd();
    let mut ring: IoUring = IoUring::builder()
        .setup_single_issuer()
        .setup_defer_taskrun()
        .setup_coop_taskrun()
        .build(1024)
        .expect("io_uring (kernel 6.1 or later)");
    let mut conns: Vec<Option<Box<Conn>>> = Vec::new();
    let mut next = vec![opcode::AcceptMulti::new(types::Fd(lfd))
        .build()
        .user_data(ACCEPT)];
    let mut done = Vec::new();
    loop {
        {
            let mut sq = ring.submission();
            for e in next.drain(..) {
                // SAFETY: every buffer an entry points to lives in a boxed Conn
                // that is only dropped after the entry completed.
                unsafe { sq.push(&e).expect("submission queue full") };
            }
        }
        ring.submit_and_wait(1).expect("io_uring_enter");
        done.extend(
            ring.completion()
                .map(|c| (c.user_data(), c.result(), c.flags())),
        );
        for (data, res, flags) in done.drain(..) {
            if data == ACCEPT {
                if !cqueue::more(flags) {
                    next.push(
                        opcode::AcceptMulti::new(types::Fd(lfd))
                            .build()
                            .user_data(ACCEPT),
                    );
                }
                if res < 0 {
                    continue;
                }
                let fd = res;
                nodelay(fd);
                if conns.len() <= fd as usize {
                    conns.resize_with(fd as usize + 1, || None);
                }
                let mut c = Box::new(Conn {
                    session: Session::default(),
                    rbuf: vec![0; READ_BUF].into_boxed_slice(),
                    wbuf: GREETING.to_vec(),
                    queued: Vec::new(),
                    sending: false,
                    closing: false,
                });
                next.push(send(fd, &mut c));
                next.push(recv(fd, &mut c));
                conns[fd as usize] = Some(c);
                continue;
            }
            let fd = (data >> 1) as i32;
            let Some(c) = conns[fd as usize].as_mut() else {
                continue;
            };
            if data & 1 == 1 {
                // A send completed (tiny replies: never partial here).
                c.sending = false;
                if res < 0 || (c.closing && c.queued.is_empty()) {
                    close(&mut conns, fd);
                } else if !c.queued.is_empty() {
                    std::mem::swap(&mut c.wbuf, &mut c.queued);
                    c.queued.clear();
                    next.push(send(fd, c));
                }
                continue;
            }
            if res <= 0 {
                // End of stream or an error: close once the last reply is out.
                c.closing = true;
                if !c.sending {
                    close(&mut conns, fd);
                }
                continue;
            }
            let n = res as usize;
            if c.sending {
                let Conn {
                    session,
                    rbuf,
                    queued,
                    ..
                } = &mut **c;
                session.feed(&rbuf[..n], queued);
            } else {
                c.wbuf.clear();
                let Conn {
                    session,
                    rbuf,
                    wbuf,
                    ..
                } = &mut **c;
                session.feed(&rbuf[..n], wbuf);
                if !c.wbuf.is_empty() {
                    next.push(send(fd, c));
                }
            }
            if c.session.quit {
                c.closing = true;
                if !c.sending {
                    close(&mut conns, fd);
                }
                continue;
            }
            next.push(recv(fd, c));
        }
    }
}
