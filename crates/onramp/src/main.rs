use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    onramp::telemetry::init();
    match onramp::cli::run(onramp::cli::Cli::parse()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("onramp: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
