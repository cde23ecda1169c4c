//! Parses flags, starts logging, runs the exporter and maps the outcome to an exit code.

use std::process::ExitCode;

use clap::Parser;
use indicator_exporter::cli::{self, Cli, Command, ExportArgs};
use indicator_exporter::{check, export, logging, run, Settings};
use tracing::error;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.version {
        print!("{}", cli::version_text());
        return ExitCode::SUCCESS;
    }
    match &cli.command {
        Some(Command::Export(args)) => return export_history(&cli, args),
        None if cli.config_check => {
            return match check(&cli.config_file) {
                Ok(d) => {
                    println!("{}: OK: {}", cli.config_file.display(), d.summary());
                    ExitCode::SUCCESS
                }
                Err(errors) => invalid(&cli, &errors),
            };
        }
        None => {}
    }
    logging::init(cli.log_level, cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            error!(error = %e, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let address = cli::listen_address(&cli.listen_address);
        let listener = match tokio::net::TcpListener::bind(&address).await {
            Ok(l) => l,
            Err(e) => {
                error!(address, error = %e, "cannot listen");
                return ExitCode::FAILURE;
            }
        };
        let settings = Settings {
            config_file: cli.config_file.clone(),
            telemetry_path: cli.telemetry_path.clone(),
            enable_lifecycle: cli.enable_lifecycle,
            watch: cli.config_watch,
        };
        match run(settings, listener, shutdown_signal()).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(errors) => {
                error!(
                    errors = errors.len(),
                    "invalid configuration, not serving:\n{errors}"
                );
                ExitCode::FAILURE
            }
        }
    })
}

fn invalid(cli: &Cli, errors: &indicator_exporter::diagnostic::Diagnostics) -> ExitCode {
    eprintln!("{errors}");
    eprintln!("{}: {} error(s)", cli.config_file.display(), errors.len());
    ExitCode::FAILURE
}

/// `export`: the dataset's history, to a file or standard output; the summary on stderr.
fn export_history(cli: &Cli, args: &ExportArgs) -> ExitCode {
    let dataset = match check(&cli.config_file) {
        Ok(d) => d,
        Err(errors) => return invalid(cli, &errors),
    };
    let mut body = Vec::new();
    let summary = export::write(&dataset, args.format.encoding(), &mut body);
    let to_stdout = args.output.as_os_str() == "-";
    let written = if to_stdout {
        std::io::Write::write_all(&mut std::io::stdout().lock(), &body)
    } else {
        std::fs::write(&args.output, &body)
    };
    let target = if to_stdout {
        "standard output".to_string()
    } else {
        args.output.display().to_string()
    };
    match written {
        Ok(()) => {
            eprintln!(
                "{}: exported {summary} to {target}",
                cli.config_file.display()
            );
            if summary.before_1970 > 0 {
                eprintln!(
                    "warning: {} samples are of periods that end before 1970: their timestamps are negative, which time-series databases do not support (promtool drops some of them)",
                    summary.before_1970
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{target}: cannot write the export: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Resolves on SIGTERM or SIGINT.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).expect("installing a SIGTERM handler");
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM received"),
            _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}
