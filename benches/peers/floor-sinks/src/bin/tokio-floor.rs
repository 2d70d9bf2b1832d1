//! The same minimal protocol on tokio, as smtpkit's CLI runs it: a current-thread
//! runtime, a task per connection, `read` into a 64 KiB buffer under a 300 s idle
//! timeout, `write_all` of the replies. The difference to `epoll-floor` is what the
//! runtime costs; the difference to smtpkit is what smtpkit's own code costs.
use floor_sinks::{Session, GREETING};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn main() {
    let listener = floor_sinks::listen();
    listener.set_nonblocking(true).expect("nonblocking");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65536];
                let mut out = Vec::with_capacity(512);
                let mut session = Session::default();
                if stream.write_all(GREETING).await.is_err() {
                    return;
                }
                loop {
                    let read =
                        tokio::time::timeout(Duration::from_secs(300), stream.read(&mut buf));
                    let n = match read.await {
                        Ok(Ok(n)) if n > 0 => n,
                        _ => return,
                    };
                    out.clear();
                    session.feed(&buf[..n], &mut out);
                    if !out.is_empty() && stream.write_all(&out).await.is_err() {
                        return;
                    }
                    if session.quit {
                        return;
                    }
                }
            });
        }
    });
}
