//! The threaded controller's start/stop contract.

use std::net::{IpAddr, Ipv4Addr, TcpListener};
use std::time::{Duration, Instant};

use smtpkit::ServerError;
use smtpkit::handlers::Sink;

use super::util::*;

#[test]
fn start_reports_address_and_greets() {
    let mut controller = tcp_controller(Sink);
    assert!(!controller.is_running());
    assert_eq!(controller.local_addr(), None);

    controller.start().expect("start");
    assert!(controller.is_running());
    let addr = addr_of(&controller);
    assert_eq!(addr.ip(), IpAddr::V4(Ipv4Addr::LOCALHOST));
    assert_ne!(addr.port(), 0, "port 0 resolves to the bound port");
    assert_eq!(controller.local_addrs(), [addr]);

    let mut client = Client::connect(addr);
    let greeting = client.greeting();
    assert!(greeting.starts_with("220 "), "{greeting}");
    assert_eq!(client.cmd("QUIT"), "221 Bye");
    client.expect_closed();

    controller.stop().expect("stop");
}

#[test]
fn stop_releases_the_port_and_restart_works() {
    let mut controller = started(Sink);
    let first = addr_of(&controller);
    Client::connect(first).greeting();

    controller.stop().expect("stop");
    assert!(!controller.is_running());
    assert_eq!(controller.local_addr(), None);
    assert!(controller.local_addrs().is_empty());
    assert_refused(first);
    // The port is free again: anyone can bind it.
    drop(TcpListener::bind(first).expect("the port is released after stop()"));

    // Restartable (port 0: possibly another port).
    controller.start().expect("restart");
    let second = addr_of(&controller);
    let mut client = Client::connect(second);
    client.greeting();
    assert_eq!(client.cmd("HELO client.test"), format!("250 {HOST}"));
    assert_eq!(client.cmd("QUIT"), "221 Bye");
    controller.stop().expect("stop again");
    assert_refused(second);
}

#[test]
fn restart_on_the_same_fixed_port() {
    // Find a free port, then serve on it twice in a row.
    let port = {
        let mut probe = started(Sink);
        let port = addr_of(&probe).port();
        probe.stop().unwrap();
        port
    };
    let mut controller = tcp_controller(Sink).with_port(port);
    for round in 0..2 {
        controller
            .start()
            .unwrap_or_else(|e| panic!("start #{round} on port {port}: {e}"));
        assert_eq!(addr_of(&controller).port(), port);
        Client::connect(addr_of(&controller)).greeting();
        controller.stop().unwrap();
    }
}

#[test]
fn dropping_a_started_controller_stops_it() {
    let addr = {
        let controller = started(Sink);
        let addr = addr_of(&controller);
        Client::connect(addr).greeting();
        addr
    };
    assert_refused(addr);
}

#[test]
fn start_on_a_busy_port_fails_with_bind_quickly() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let mut controller = tcp_controller(Sink)
        .with_port(port)
        .with_ready_timeout(Duration::from_secs(10));

    let t0 = Instant::now();
    let err = controller.start().expect_err("the port is taken");
    let elapsed = t0.elapsed();
    match &err {
        ServerError::Bind { addr, source } => {
            assert!(addr.contains(&port.to_string()), "{addr}");
            assert_eq!(source.kind(), std::io::ErrorKind::AddrInUse, "{source}");
        }
        other => panic!("expected ServerError::Bind, got {other:?}"),
    }
    assert!(
        err.to_string()
            .starts_with("error while attempting to bind on address"),
        "{err}"
    );
    // Unlike aiosmtpd, the bind error does not wait out the ready timeout.
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
    assert!(!controller.is_running());
    assert!(matches!(controller.stop(), Err(ServerError::NotRunning)));

    // Once the port is free, the same controller starts.
    drop(taken);
    controller.start().expect("start once the port is free");
    Client::connect(addr_of(&controller)).greeting();
    controller.stop().unwrap();
}

#[test]
fn stop_when_not_running_and_start_when_running() {
    let mut controller = tcp_controller(Sink);
    assert!(matches!(controller.stop(), Err(ServerError::NotRunning)));

    controller.start().unwrap();
    let addr = addr_of(&controller);
    assert!(matches!(
        controller.start(),
        Err(ServerError::AlreadyRunning)
    ));
    // The failed second start left the first server alone.
    assert_eq!(controller.local_addr(), Some(addr));
    Client::connect(addr).greeting();

    controller.stop().unwrap();
    assert!(matches!(controller.stop(), Err(ServerError::NotRunning)));
}

#[test]
fn stop_sends_421_to_open_connections() {
    let mut controller = started(Sink);
    let mut client = Client::connect(addr_of(&controller));
    client.greeting();
    assert_eq!(client.cmd("HELO client.test"), format!("250 {HOST}"));

    controller.stop().expect("stop with a connection open");
    assert_eq!(
        client.reply1(),
        format!("421 {HOST} Service not available, closing transmission channel")
    );
    client.expect_closed();
}

#[test]
fn server_hostname_and_handler_accessor() {
    let recorder = Recorder::default();
    let inbox = recorder.inbox.clone();
    let mut controller = tcp_controller(recorder).with_server_hostname("mx.example.org");
    controller.start().unwrap();
    assert!(std::sync::Arc::ptr_eq(&controller.handler().inbox, &inbox));

    let mut client = Client::connect(addr_of(&controller));
    let greeting = client.reply1();
    assert!(greeting.starts_with("220 mx.example.org "), "{greeting}");
    let ehlo = client.cmd_multi("EHLO client.test");
    assert_eq!(
        ehlo,
        [
            "250-mx.example.org",
            "250-SIZE 33554432",
            "250-8BITMIME",
            "250-SMTPUTF8",
            "250 HELP"
        ]
    );
    controller.stop().unwrap();
}
