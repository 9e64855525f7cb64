//! `june-orchestrator`: load settings, start logging, build, serve.

use std::collections::HashMap;
use std::path::PathBuf;

use june_orchestrator::Application;
use june_orchestrator::config::Settings;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // The spec needs no configuration: print it before loading any.
    if std::env::args().nth(1).as_deref() == Some("openapi") {
        println!("{}", june_http_api::openapi::json());
        return Ok(());
    }
    let env: HashMap<String, String> = std::env::vars().collect();
    let file = env.get("JUNE_CONFIG").map(PathBuf::from);
    let settings = match Settings::load(&env, file.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            // One line, naming the setting; no backtrace noise for a config mistake.
            eprintln!("june-orchestrator: {e}");
            std::process::exit(2);
        }
    };
    june_orchestrator::telemetry::init(
        &settings.log.level,
        settings.log.format == "json",
        std::io::stdout,
    );
    match std::env::args().nth(1).as_deref() {
        None | Some("serve") => {}
        Some("migrate") => {
            // Opening the store applies the embedded migrations; then stop.
            june_orchestrator::open_store(&settings).await?;
            println!("june-orchestrator: migrations applied");
            return Ok(());
        }
        Some(other) => {
            eprintln!(
                "june-orchestrator: unknown command {other:?} (expected: serve, migrate, openapi)"
            );
            std::process::exit(2);
        }
    }
    let app = Application::build(settings).await?;
    app.run_until_stopped().await?;
    Ok(())
}
