//! Checks the test harness itself: a server starts, answers `version`, stops.
mod common;

#[test]
fn server_starts_and_answers_version() {
    if !common::against_memcached() {
        return; // memcrab's version test lives with the text protocol tests
    }
    let s = common::Server::start(&[]);
    let mut c = s.connect();
    c.send(b"version\r\n");
    assert!(c.read_line().starts_with("VERSION 1.6"));
}
