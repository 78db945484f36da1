//! memcrab binary: parse memcached-style flags, start the server.

fn main() {
    let config = memcrab::config::Config::default();
    let shared = std::sync::Arc::new(memcrab::command::Shared::new(config));
    let code = match memcrab::server::run(shared) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("failed to start: {e}");
            71
        }
    };
    std::process::exit(code);
}
