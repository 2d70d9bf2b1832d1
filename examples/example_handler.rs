//! aiosmtpd's ExampleHandler, in Rust: accept mail for example.com only and print
//! each message. Run with `cargo run --example example_handler`, then send mail to
//! the printed address (e.g. `swaks --server 127.0.0.1:PORT --to bart@example.com`).

use smtpkit::tokio::Controller;
use smtpkit::{Envelope, Handler, HookResult, Outcome, Session};

struct ExampleHandler;

impl Handler for ExampleHandler {
    async fn handle_rcpt(
        &self,
        _session: &mut Session,
        _envelope: &mut Envelope,
        address: &str,
        _options: &[String],
    ) -> HookResult {
        if !address.ends_with("@example.com") {
            return Ok(Outcome::reply(550, "not relaying to that domain"));
        }
        // The default: record the recipient in envelope.rcpt_tos, answer 250 OK.
        Ok(Outcome::Default)
    }

    async fn handle_data(&self, _session: &mut Session, envelope: &mut Envelope) -> HookResult {
        println!(
            "Message from {}",
            envelope.mail_from.as_deref().unwrap_or("")
        );
        println!("Message for {:?}", envelope.rcpt_tos);
        println!("Message data:\n");
        for line in envelope.content_lossy().lines() {
            println!("{}", format!("> {line}").trim());
        }
        println!();
        println!("End of message");
        Ok(Outcome::reply(250, "Message accepted for delivery"))
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut controller = Controller::new(ExampleHandler)
        .with_hostname("127.0.0.1")
        .with_port(0); // any free port
    controller.start()?;
    let addr = controller.local_addr().expect("running");
    println!("listening on {addr}");

    // Send it a message, as the aiosmtpd docs do with smtplib.
    use std::io::{BufRead, BufReader, Write};
    let stream = std::net::TcpStream::connect(addr)?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    let mut line = String::new();
    for cmd in [
        "",
        "HELO client.example\r\n",
        "MAIL FROM:<a@example.com>\r\n",
        "RCPT TO:<b@example.com>\r\n",
        "DATA\r\n",
        "Subject: A test\r\n\r\nHi Bart, this is Anne.\r\n.\r\n",
        "QUIT\r\n",
    ] {
        writer.write_all(cmd.as_bytes())?;
        line.clear();
        reader.read_line(&mut line)?;
        print!("S: {line}");
    }
    if std::env::args().any(|a| a == "--serve") {
        std::thread::park();
    }
    controller.stop()?;
    Ok(())
}
