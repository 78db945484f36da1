//! memcrab binary: parse memcached-style flags, start the server.

use memcrab::config::{parse_args, CliAction, EXIT_USAGE};

fn main() {
    let config = match parse_args(std::env::args()) {
        Ok(CliAction::Run(c)) => *c,
        Ok(CliAction::Print(text)) => {
            print!("{text}");
            std::process::exit(0);
        }
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(EXIT_USAGE);
        }
    };
    env_logger::Builder::new()
        .filter_level(config.log_level())
        .parse_env("RUST_LOG")
        .init();
    // Detach before any thread starts (the store spawns its own).
    if let Err(e) = memcrab::server::daemon::prepare_process(&config) {
        eprintln!("failed to start: {e}");
        std::process::exit(71);
    }
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
