//! Parses flags, starts logging, runs the exporter and maps the outcome to an exit code.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use indicator_exporter::cli::{self, Cli, Command, ExportArgs, InitArgs};
use indicator_exporter::diagnostic;
use indicator_exporter::http::web;
use indicator_exporter::reload::load;
use indicator_exporter::{check_catalog, export, logging, run_on, Settings};
use tracing::{debug, error, warn};

/// How long, after serving stopped, work still running on blocking threads (a load stuck on
/// a file) may hold up the exit.
const EXIT_GRACE: Duration = Duration::from_secs(1);

fn main() -> ExitCode {
    // First: SIGHUP's default action ends the process, and start-up can take a while.
    #[cfg(unix)]
    let early_hup = indicator_exporter::reload::catch_early_sighup();
    limit_malloc_arenas();
    let cli = Cli::parse();
    if cli.version {
        print!("{}", cli::version_text());
        return ExitCode::SUCCESS;
    }
    // A usage error, reported as clap reports the others, before anything is read.
    let shard = cli.shard().unwrap_or_else(|e| {
        use clap::CommandFactory;
        Cli::command()
            .error(clap::error::ErrorKind::ValueValidation, e)
            .exit()
    });
    match &cli.command {
        Some(Command::Export(args)) => return export_history(&cli, args),
        Some(Command::Init(args)) => return init(&cli, args),
        None if cli.config_check => return config_check(&cli),
        None => {}
    }
    logging::init(cli.log_level, cli.log_format);
    #[cfg(unix)]
    if let Err(e) = early_hup {
        warn!(error = %e, "cannot catch SIGHUP during start-up; a SIGHUP before the dataset is loaded ends the process");
    }
    raise_open_files_limit();
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
    let code = runtime.block_on(async {
        let Some(listeners) = listeners(&cli) else {
            return ExitCode::FAILURE;
        };
        let settings = Settings {
            config_file: cli.config_file.clone(),
            telemetry_path: cli.telemetry_path.clone(),
            enable_lifecycle: cli.enable_lifecycle,
            watch: cli.config_watch,
            limits: load::Limits {
                max_file_size: cli.max_file_size,
                storage: cli.storage().map(std::sync::Arc::new),
                ..load::Limits::default()
            },
            web_config_file: cli.web_config_file.clone(),
            web_limits: cli.web_limits(),
            shard,
        };
        match run_on(settings, listeners, shutdown_signal()).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(errors) => {
                error!(
                    errors = errors.len(),
                    "invalid configuration, not serving:\n{errors}"
                );
                ExitCode::FAILURE
            }
        }
    });
    // Dropping the runtime would wait for every blocking thread, a stuck load's too.
    runtime.shutdown_timeout(EXIT_GRACE);
    code
}

/// Raises the soft limit on open files to the hard limit: each scrape is a connection, and
/// the soft limit (often 1024) is the smaller of the two only by convention.
fn raise_open_files_limit() {
    #[cfg(unix)]
    {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit and setrlimit only read and write the struct passed.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
            debug!(error = %std::io::Error::last_os_error(), "cannot read the open files limit");
            return;
        }
        if limit.rlim_cur >= limit.rlim_max {
            debug!(
                open_files = limit.rlim_cur,
                "open files limit already at its maximum"
            );
            return;
        }
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            debug!(
                from = limit.rlim_cur,
                to = raised.rlim_cur,
                "raised the open files limit"
            );
        } else {
            debug!(open_files = limit.rlim_cur, error = %std::io::Error::last_os_error(), "cannot raise the open files limit");
        }
    }
}

/// Binds every `--web.listen-address`, or takes systemd's sockets; None (logged) if one fails.
fn listeners(cli: &Cli) -> Option<Vec<tokio::net::TcpListener>> {
    let bound: Vec<(String, std::io::Result<std::net::TcpListener>)> = if cli.systemd_socket {
        #[cfg(unix)]
        let sockets = indicator_exporter::http::listen::systemd_sockets();
        #[cfg(not(unix))]
        let sockets = Err(std::io::Error::other("systemd sockets need Linux"));
        match sockets {
            Ok(s) => s
                .into_iter()
                .map(|l| ("systemd socket".into(), Ok(l)))
                .collect(),
            Err(e) => vec![("systemd socket".into(), Err(e))],
        }
    } else {
        let addresses = cli.listen_address.iter();
        addresses
            .map(|a| (a.clone(), indicator_exporter::http::listen::bind(a)))
            .collect()
    };
    let mut listeners = Vec::new();
    for (address, listener) in bound {
        match listener.and_then(tokio::net::TcpListener::from_std) {
            Ok(l) => listeners.push(l),
            Err(e) => {
                error!(address, error = %e, "cannot listen");
                return None;
            }
        }
    }
    Some(listeners)
}

/// glibc gives each thread that allocates its own arena (up to 8 per core) and keeps what is
/// freed there: with loads on blocking threads and scrapes on the workers, RSS crept up 11 %
/// over a three-minute soak of reloads, and stays flat with two arenas. The scrape path
/// allocates little, so the lost parallelism in malloc costs nothing measurable.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; no other thread exists yet.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// Prints every error, then a count per file given on the command line: the dataset's (its
/// data files' errors counted with it) and the web config's.
/// `--config.check`: every dataset of the catalogue and the web config checked in one run;
/// what each dataset will serve, or every error.
fn config_check(cli: &Cli) -> ExitCode {
    let web = cli.web_config_file.as_deref().map(|p| (p, web::check(p)));
    match (check_catalog(&cli.config_file, cli.max_file_size), web) {
        (Ok(ds), web @ (None | Some((_, Ok(_))))) => {
            let mut text = String::new();
            for d in ds {
                text += &format!("{}: OK: {}\n", d.files[0].display(), d.summary());
                for line in d.served() {
                    text += &format!("  {line}\n");
                }
            }
            if let Some((p, Ok(summary))) = web {
                text += &format!("{}: OK: web config, {summary}\n", p.display());
            }
            write_stdout(&text);
            ExitCode::SUCCESS
        }
        (dataset, web) => {
            let web = web.and_then(|(_, w)| w.err());
            let all = dataset.err().into_iter().chain(web);
            let errors = diagnostic::Diagnostics::new(all.flat_map(|e| e.0).collect());
            invalid(cli, &errors)
        }
    }
}

/// Writes to standard output; a reader that stopped early (`| head`) is no failure.
fn write_stdout(text: &str) {
    use std::io::Write;
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}

fn invalid(cli: &Cli, errors: &indicator_exporter::diagnostic::Diagnostics) -> ExitCode {
    eprintln!("{errors}");
    let web = cli.web_config_file.as_deref();
    let of_web = errors
        .iter()
        .filter(|d| Some(d.path.as_path()) == web)
        .count();
    if errors.len() > of_web {
        eprintln!(
            "{}: {} error(s)",
            cli.config_file.display(),
            errors.len() - of_web
        );
    }
    if let Some(web) = web.filter(|_| of_web > 0) {
        eprintln!("{}: {of_web} error(s)", web.display());
    }
    ExitCode::FAILURE
}

/// `init`: a dataset config for a publisher file, written to `--output`; what it serves (or
/// why it does not load) on stderr. Exit 1 when the file cannot be read or the config does
/// not load (it is written all the same, to be edited).
fn init(cli: &Cli, args: &InitArgs) -> ExitCode {
    let to_stdout = args.output.as_os_str() == "-";
    let req = indicator_exporter::init::Request {
        source: args.source.clone(),
        structure: args.structure.clone(),
        output: (!to_stdout).then(|| args.output.clone()),
        max_file_size: cli.max_file_size,
    };
    let outcome = match indicator_exporter::init::run(&req) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let target = if to_stdout {
        write_stdout(&outcome.text);
        "standard output".to_string()
    } else {
        if let Err(e) = std::fs::write(&args.output, &outcome.text) {
            eprintln!("{}: cannot write the config: {e}", args.output.display());
            return ExitCode::FAILURE;
        }
        args.output.display().to_string()
    };
    match outcome.served {
        Ok(lines) => {
            eprintln!("{target}: {}", lines.join("\n"));
            ExitCode::SUCCESS
        }
        Err(errors) => {
            eprintln!("{target}: written, but it does not load yet:\n{errors}");
            ExitCode::FAILURE
        }
    }
}

/// `export`: the dataset's history, to a file or standard output; the summary on stderr.
fn export_history(cli: &Cli, args: &ExportArgs) -> ExitCode {
    if args.vintages {
        return export_vintages(cli, args);
    }
    let Some(encoding) = args.format.encoding() else {
        eprintln!("--format=csv writes vintages only: add --vintages and --storage.path");
        return ExitCode::FAILURE;
    };
    let datasets = match check_catalog(&cli.config_file, cli.max_file_size) {
        Ok(d) => d,
        Err(errors) => return invalid(cli, &errors),
    };
    let mut body = Vec::new();
    let mut summary = export::Summary::default();
    for (i, d) in datasets.iter().enumerate() {
        let s = export::write(d, encoding, &mut body);
        // OpenMetrics ends once, after the last dataset.
        if i + 1 < datasets.len() && body.ends_with(b"# EOF\n") {
            body.truncate(body.len() - b"# EOF\n".len());
        }
        summary.families += s.families;
        summary.series += s.series;
        summary.samples += s.samples;
        summary.before_1970 += s.before_1970;
    }
    write_export(cli, args, &body, summary)
}

/// `export --vintages`: the revision history stored under `--storage.path`. A state file that
/// cannot be read is reported and left out.
fn export_vintages(cli: &Cli, args: &ExportArgs) -> ExitCode {
    let Some(storage) = cli.storage() else {
        eprintln!("export --vintages reads the state that --storage.path names: give it");
        return ExitCode::FAILURE;
    };
    let files = match storage.read_all() {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // Nothing served with this --storage.path yet: an empty history.
            eprintln!("warning: {}: no state stored yet", storage.dir.display());
            Vec::new()
        }
        Err(e) => {
            eprintln!(
                "{}: cannot read the state directory: {e}",
                storage.dir.display()
            );
            return ExitCode::FAILURE;
        }
    };
    let mut states = Vec::new();
    for (path, read) in files {
        match read {
            Ok(s) => states.push(s),
            Err((_, e)) => eprintln!("warning: {}: left out: {e}", path.display()),
        }
    }
    let mut body = Vec::new();
    let summary = match args.format.encoding() {
        Some(format) => export::vintages(&states, format, &mut body),
        None => export::vintages_csv(&states, &mut body),
    };
    write_export(cli, args, &body, summary)
}

/// Writes an export to `--output` and reports it on stderr.
fn write_export(cli: &Cli, args: &ExportArgs, body: &[u8], summary: export::Summary) -> ExitCode {
    let to_stdout = args.output.as_os_str() == "-";
    let written = if to_stdout {
        std::io::Write::write_all(&mut std::io::stdout().lock(), body)
    } else {
        std::fs::write(&args.output, body)
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

/// Resolves on SIGTERM or SIGINT. A second one during the graceful shutdown that follows ends
/// the process at once, as operators expect of a second Ctrl-C.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).expect("installing a SIGTERM handler");
        let mut int = signal(SignalKind::interrupt()).expect("installing a SIGINT handler");
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM received"),
            _ = int.recv() => tracing::info!("SIGINT received"),
        }
        tokio::spawn(async move {
            let name = tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
            };
            warn!(
                signal = name,
                "second signal during shutdown, stopping at once"
            );
            std::process::exit(1);
        });
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}
