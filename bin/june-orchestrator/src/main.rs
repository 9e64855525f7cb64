//! `june-orchestrator`: load settings, start logging, build, serve.

use std::collections::HashMap;
use std::path::PathBuf;

use june_orchestrator::Application;
use june_orchestrator::config::Settings;
use june_orchestrator::telemetry::OtelSettings;

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
    let otel = match OtelSettings::from_env(&env) {
        Ok(otel) => otel,
        Err(e) => {
            eprintln!("june-orchestrator: {e}");
            std::process::exit(2);
        }
    };
    let telemetry = june_orchestrator::telemetry::init_with(
        &settings.log.level,
        settings.log.format == "json",
        std::io::stdout,
        otel.as_ref(),
    )?;
    match std::env::args().nth(1).as_deref() {
        None | Some("serve") => {}
        Some("migrate") => {
            // Opening the store applies the embedded migrations; then stop.
            june_orchestrator::open_store(&settings).await?;
            println!("june-orchestrator: migrations applied");
            let _ = tokio::task::spawn_blocking(move || telemetry.shutdown()).await;
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
    let served = app.run_until_stopped().await;
    // The spans of the last requests are still queued: export them (bounded by the export
    // timeout) before leaving, whether the server stopped cleanly or not.
    let _ = tokio::task::spawn_blocking(move || telemetry.shutdown()).await;
    served?;
    Ok(())
}
