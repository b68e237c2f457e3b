//! `tap`: read tap records (this project's filters and Envoy's tap files).
//!
//! ```text
//! tap list  [FILTERS] [FILE|DIR ...]        one line per record
//! tap show  [FILTERS] [FILE|DIR ...]        headers and bodies, binary as hex
//! tap jsonl [FILTERS] [FILE|DIR ...]        the records as JSON lines
//! tap split [FILTERS] --out DIR [FILE ...]  one JSON file per record (tap_<n>.json)
//! tap har   [FILTERS] [FILE ...] > x.har    HAR 1.2 (HTTP records)
//! tap pcap  [FILTERS] --out x.pcap|x.pcapng|- [--format pcap|pcapng] [FILE ...]
//! tap policy suggest [FILTERS] [--format l7_policy|cnp] [--max-literals N]
//!            [--allow-prefix PREFIX ...] [--port N] [--app NAME] [--report FILE]
//!            [--learn-status 2xx,3xx] [--generalize-unauthenticated] [FILE ...]
//! tap policy check POLICY [FILTERS] [--json] [FILE ...]
//! tap completions bash|zsh|fish|elvish|powershell
//! FILTERS: --method M  --path PREFIX  --status 404|5xx|200-299  --header NAME[=VALUE]  --http  --tcp
//! ```
//! Without files, records are read from standard input. A directory means
//! every `*.json` and `*.jsonl` file in it. `tap help COMMAND` (or
//! `tap COMMAND --help`) describes each command and its flags.
//!
//! Exit status: 0 done; 1 `policy check` found requests the policy would
//! deny; 2 a usage error, input that cannot be read, or a `policy check`
//! with nothing to check.

use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum, ValueHint};
use clap_complete::Shell;
use serde_json::Value;
use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use tap_tool::filter::{parse_statuses, Filter};
use tap_tool::policy::{self, Format};
use tap_tool::record::{self, parse, Item, Record};
use tap_tool::stream::{self, Documents};
use tap_tool::suggest::Options;
use tap_tool::terminal::visible;
use tap_tool::{har, pcap, show};

const FILES: &str = "Files of records, or directories of them (their *.json and *.jsonl \
                     files); standard input without any";

const AFTER_HELP: &str = "Records are tap_http's and tap_tcp's JSON lines and Envoy's native tap \
files (tap_*.json, pretty-printed or one per line). Without FILE|DIR, records are read from \
standard input; a directory means its *.json and *.jsonl files. Lines that are not records are \
skipped with a message on standard error.

Exit status: 0 done; 1 `policy check` found requests the policy would deny; 2 a usage error, \
input that cannot be read, or a `policy check` with nothing to check.";

/// Read tap records: list, show, split, HAR and pcap; l7_policy rules from them
#[derive(Parser)]
#[command(name = "tap", version, after_help = AFTER_HELP)]
#[command(subcommand_required = true, arg_required_else_help = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// One line per record: time, method, host, path, status and body sizes
    ///
    /// Time is stream_info.start_time (tap_http's record_stream_info) or a
    /// connection's first event; sizes are body (or byte) counts, '+' when
    /// truncated. A TCP record shows its addresses and the bytes each way.
    #[command(args_override_self = true)]
    List(Records),
    /// Headers and bodies of each record; binary bodies as a hex dump
    #[command(args_override_self = true)]
    Show(Records),
    /// The selected records as JSON lines, one compact document per line
    ///
    /// Each record exactly as read (Envoy's pretty-printed tap files become
    /// one line each), written as it arrives: a filter between a live
    /// stream and another command (tap.sh APP --follow | tap jsonl --status
    /// 5xx | tap list).
    #[command(args_override_self = true)]
    Jsonl(Records),
    /// One pretty-printed file per record, DIR/tap_<n>.json, like Envoy's file_per_tap
    #[command(args_override_self = true)]
    Split(Split),
    /// The HTTP records as HAR 1.2 on standard output, for browser developer tools
    #[command(args_override_self = true)]
    Har(Records),
    /// A capture Wireshark opens: HTTP records as HTTP/1.1 exchanges, TCP records as their bytes
    ///
    /// Each HTTP record becomes an HTTP/1.1 exchange on its own TCP stream to
    /// port 80, each TCP record its connection's bytes in event order with
    /// its own IPv4 addresses. Checksums are valid. Packets carry the
    /// records' times (stream_info.start_time and duration, TCP event
    /// timestamps), else the time tap read the record. Records are written
    /// as they arrive: `--out -` follows a live stream.
    #[command(args_override_self = true)]
    Pcap(Pcap),
    /// l7_policy rules from recorded requests, and a policy checked against them
    #[command(subcommand_required = true, arg_required_else_help = true)]
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// Print a completion script for SHELL on standard output
    ///
    /// bash: tap completions bash > ~/.local/share/bash-completion/completions/tap
    ///
    /// zsh: tap completions zsh > ~/.zfunc/_tap (with ~/.zfunc in $fpath)
    ///
    /// fish: tap completions fish > ~/.config/fish/completions/tap.fish
    Completions {
        /// The shell to complete for
        #[arg(value_enum)]
        shell: Shell,
    },
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// l7_policy rules that allow the recorded requests (the report on standard error)
    ///
    /// Prints an l7_policy configuration (with --format cnp a
    /// CiliumNetworkPolicy) whose rules allow the recorded requests and no
    /// more than their templates. It learns only from requests the app
    /// answered with a status worth learning (--learn-status), and widens
    /// rules only for a proven caller (the mTLS principal the record holds)
    /// unless --generalize-unauthenticated. The report, one line per rule and
    /// per reason a request was left out, goes to standard error or --report
    /// FILE.
    #[command(args_override_self = true)]
    Suggest(Suggest),
    /// What POLICY would deny of the recorded requests (exit 1 if anything)
    ///
    /// Runs l7_policy's own decision on each recorded request and prints the
    /// would-be denials grouped by why, then how many requests each rule
    /// allowed. Exit status 0 when nothing recorded would be denied, 1 when
    /// something would, 2 when there is nothing to check or some input is not
    /// tap records.
    #[command(args_override_self = true)]
    Check(Check),
}

/// Which records a command works on.
#[derive(Args)]
#[command(next_help_heading = "Filters")]
struct FilterArgs {
    /// Only HTTP records with this method (GET, POST, ...)
    #[arg(long, value_name = "METHOD")]
    method: Option<String>,
    /// Only HTTP records whose path (with its query) starts with PREFIX
    #[arg(long, value_name = "PREFIX")]
    path: Option<String>,
    /// Only HTTP records whose status is in LIST: comma-separated codes, classes and ranges (404, 5xx, 200-299,304)
    #[arg(long, value_name = "LIST", value_parser = statuses)]
    status: Option<Statuses>,
    /// Only HTTP records with this request or response header (any case), with VALUE if given
    #[arg(long, value_name = "NAME[=VALUE]")]
    header: Option<String>,
    /// Only HTTP records
    #[arg(long)]
    http: bool,
    /// Only TCP records (a condition on HTTP fields selects none)
    #[arg(long)]
    tcp: bool,
}

impl FilterArgs {
    fn filter(&self) -> Filter {
        Filter {
            method: self.method.clone(),
            path_prefix: self.path.clone(),
            status: self.status.clone().map(|s| s.0),
            header: self.header.as_ref().map(|h| match h.split_once('=') {
                Some((name, value)) => (name.to_string(), Some(value.to_string())),
                None => (h.clone(), None),
            }),
            only_http: self.http,
            only_tcp: self.tcp,
        }
    }
}

/// Status codes, classes and ranges ([`parse_statuses`]).
#[derive(Clone)]
struct Statuses(Vec<(u16, u16)>);

fn statuses(text: &str) -> Result<Statuses, String> {
    parse_statuses(text).map(Statuses)
}

fn count(text: &str) -> Result<usize, String> {
    text.parse()
        .map_err(|_| "expected a whole number, such as 5".into())
}

fn port(text: &str) -> Result<u16, String> {
    text.parse()
        .map_err(|_| "expected a port number, 0 to 65535".into())
}

fn path_prefix(text: &str) -> Result<String, String> {
    if text.starts_with('/') {
        Ok(text.to_string())
    } else {
        Err("expected a path prefix starting with /".into())
    }
}

#[derive(Args)]
struct Records {
    #[arg(value_name = "FILE|DIR", help = FILES, value_hint = ValueHint::AnyPath)]
    files: Vec<PathBuf>,
    #[command(flatten)]
    filter: FilterArgs,
}

#[derive(Args)]
struct Split {
    /// The directory to write tap_<n>.json into (created if missing)
    #[arg(long, value_name = "DIR", value_hint = ValueHint::DirPath)]
    out: PathBuf,
    #[arg(value_name = "FILE|DIR", help = FILES, value_hint = ValueHint::AnyPath)]
    files: Vec<PathBuf>,
    #[command(flatten)]
    filter: FilterArgs,
}

#[derive(Clone, Copy, ValueEnum)]
enum CaptureFormat {
    /// libpcap: every tool reads it; no comments
    Pcap,
    /// pcapng: each record's first packet carries a comment (request, status, caller, flags)
    Pcapng,
}

#[derive(Args)]
struct Pcap {
    /// The capture to write; - for standard output, written record by record as records arrive
    #[arg(long, value_name = "FILE|-", value_hint = ValueHint::FilePath)]
    out: PathBuf,
    /// The format (default: pcapng for - and *.pcapng, else pcap)
    #[arg(long, value_enum, value_name = "FORMAT")]
    format: Option<CaptureFormat>,
    #[arg(value_name = "FILE|DIR", help = FILES, value_hint = ValueHint::AnyPath)]
    files: Vec<PathBuf>,
    #[command(flatten)]
    filter: FilterArgs,
}

#[derive(Clone, Copy, ValueEnum)]
enum PolicyFormat {
    /// An l7_policy configuration (JSON)
    #[value(name = "l7_policy")]
    L7Policy,
    /// A CiliumNetworkPolicy (YAML)
    Cnp,
}

#[derive(Args)]
struct Suggest {
    /// What to print: an l7_policy configuration or a CiliumNetworkPolicy
    #[arg(long, value_enum, value_name = "FORMAT", default_value = "l7_policy")]
    format: PolicyFormat,
    /// More distinct words than N at one path position become a character class
    #[arg(long, value_name = "N", value_parser = count, default_value_t = Options::default().max_literals)]
    max_literals: usize,
    /// Allow every path under PREFIX (one rule PREFIX.*); repeatable
    #[arg(long, value_name = "PREFIX", value_parser = path_prefix)]
    allow_prefix: Vec<String>,
    /// The port a CiliumNetworkPolicy names when records carry none
    #[arg(long, value_name = "PORT", value_parser = port, default_value_t = Options::default().port)]
    port: u16,
    /// The app label of the endpoint a CiliumNetworkPolicy selects
    #[arg(long, value_name = "NAME")]
    app: Option<String>,
    /// Write the report to FILE instead of standard error
    #[arg(long, value_name = "FILE", value_hint = ValueHint::FilePath)]
    report: Option<PathBuf>,
    /// Learn only from requests answered with these statuses (default 2xx,3xx)
    #[arg(long, value_name = "LIST", value_parser = statuses)]
    learn_status: Option<Statuses>,
    /// Let requests without a proven caller widen rules like a proven caller's
    #[arg(long)]
    generalize_unauthenticated: bool,
    #[arg(value_name = "FILE|DIR", help = FILES, value_hint = ValueHint::AnyPath)]
    files: Vec<PathBuf>,
    #[command(flatten)]
    filter: FilterArgs,
}

impl Suggest {
    fn options(&self) -> Options {
        let defaults = Options::default();
        Options {
            max_literals: self.max_literals,
            allow_prefixes: self.allow_prefix.clone(),
            port: self.port,
            app: self.app.clone(),
            learn_status: self
                .learn_status
                .clone()
                .map_or(defaults.learn_status, |s| s.0),
            generalize_unauthenticated: self.generalize_unauthenticated,
        }
    }
}

#[derive(Args)]
struct Check {
    /// The policy: an l7_policy configuration (JSON) or a CiliumNetworkPolicy (YAML or JSON)
    #[arg(value_name = "POLICY", value_hint = ValueHint::FilePath)]
    policy: PathBuf,
    /// One JSON line per record instead of the report
    #[arg(long)]
    json: bool,
    #[arg(value_name = "FILE|DIR", help = FILES, value_hint = ValueHint::AnyPath)]
    files: Vec<PathBuf>,
    #[command(flatten)]
    filter: FilterArgs,
}

fn fail(message: &str) -> ExitCode {
    eprintln!("tap: {}", visible(message));
    ExitCode::from(2)
}

fn inputs(paths: &[PathBuf]) -> Result<String, String> {
    let mut text = String::new();
    stream::open(paths)?
        .read_to_string(&mut text)
        .map_err(|e| format!("reading records: {e}"))?;
    Ok(text)
}

/// The records of `paths` (or standard input): their text, the records, and
/// what was not a record (reported on standard error).
struct Input {
    text: String,
    records: Vec<Record>,
    errors: Vec<String>,
}

impl Input {
    fn read(paths: &[PathBuf]) -> Result<Input, String> {
        let text = inputs(paths)?;
        let (records, errors) = parse(&text);
        for e in &errors {
            eprintln!("tap: skipped {}", visible(e));
        }
        Ok(Input {
            text,
            records,
            errors,
        })
    }

    fn selected(&self, filter: &Filter) -> Vec<&Record> {
        self.records.iter().filter(|r| filter.matches(r)).collect()
    }
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::List(args) => each_line(&args, show::list_line),
        Command::Show(args) => each_line(&args, show::show),
        Command::Jsonl(args) => jsonl(&args),
        Command::Split(args) => split(&args),
        Command::Har(args) => har(&args),
        Command::Pcap(args) => capture(&args),
        Command::Policy {
            command: PolicyCommand::Suggest(args),
        } => suggest(&args),
        Command::Policy {
            command: PolicyCommand::Check(args),
        } => check(&args),
        Command::Completions { shell } => completions(shell),
    }
}

/// Each selected record of `paths` (or standard input) as it arrives, with
/// what was not a record reported on standard error as it is met; `write`
/// says whether to go on (false: the reader went away).
fn each_item(
    paths: &[PathBuf],
    filter: &Filter,
    mut write: impl FnMut(&Value, &Item) -> std::io::Result<()>,
) -> ExitCode {
    let reader = match stream::open(paths) {
        Ok(reader) => reader,
        Err(e) => return fail(&e),
    };
    let mut documents = Documents::new(reader);
    while let Some(document) = documents.next() {
        let value = match document {
            Ok(value) => value,
            Err(e) => {
                eprintln!("tap: skipped {}", visible(&e));
                break;
            }
        };
        let Some(item) = record::item(&value) else {
            let n = documents.number();
            eprintln!("tap: skipped document {n}: not a tap record");
            continue;
        };
        if !filter.matches(&item.record) {
            continue;
        }
        match write(&value, &item) {
            Ok(()) => {}
            // The reader closed the pipe (a pager, Wireshark): done.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return ExitCode::SUCCESS,
            Err(e) => return fail(&format!("writing: {e}")),
        }
    }
    ExitCode::SUCCESS
}

/// `list` and `show`: one block of text per selected record, each written
/// as soon as its record is read (a connection's periodic records one by
/// one).
fn each_line(args: &Records, line: fn(&Record) -> String) -> ExitCode {
    let mut stdout = std::io::stdout().lock();
    each_item(&args.files, &args.filter.filter(), |_, item| {
        writeln!(stdout, "{}", line(&item.record))?;
        stdout.flush()
    })
}

/// `jsonl`: each selected record's document on one line, as it arrives.
fn jsonl(args: &Records) -> ExitCode {
    let mut stdout = std::io::stdout().lock();
    each_item(&args.files, &args.filter.filter(), |value, _| {
        writeln!(stdout, "{value}")?;
        stdout.flush()
    })
}

fn split(args: &Split) -> ExitCode {
    let result = Input::read(&args.files)
        .and_then(|input| tap_tool::split::split(&input.text, &args.filter.filter(), &args.out));
    match result {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

fn har(args: &Records) -> ExitCode {
    let input = match Input::read(&args.files) {
        Ok(input) => input,
        Err(e) => return fail(&e),
    };
    let selected = input.selected(&args.filter.filter());
    let http: Vec<_> = selected.iter().filter_map(|r| r.as_http()).collect();
    let doc = har::har(&http);
    let untimed = har::untimed(&http);
    if untimed > 0 {
        eprintln!(
            "tap: {untimed} records carry no start time (tap_http's record_stream_info was \
             off): their startedDateTime is when tap read them, and says so in a comment"
        );
    }
    let _ = writeln!(
        std::io::stdout(),
        "{}",
        serde_json::to_string_pretty(&doc).unwrap_or_default()
    );
    ExitCode::SUCCESS
}

fn capture(args: &Pcap) -> ExitCode {
    let to_stdout = args.out.as_os_str() == "-";
    let format = match args.format {
        Some(CaptureFormat::Pcap) => pcap::Format::Pcap,
        Some(CaptureFormat::Pcapng) => pcap::Format::Pcapng,
        None if to_stdout || args.out.extension().is_some_and(|x| x == "pcapng") => {
            pcap::Format::Pcapng
        }
        None => pcap::Format::Pcap,
    };
    if to_stdout && std::io::stdout().is_terminal() {
        return fail(
            "--out -: standard output is a terminal, which a binary capture would garble; \
             pipe it (tap pcap --out - | wireshark -k -i -) or name a file",
        );
    }
    let mut out: Box<dyn Write> = if to_stdout {
        Box::new(std::io::stdout().lock())
    } else {
        match std::fs::File::create(&args.out) {
            Ok(file) => Box::new(std::io::BufWriter::new(file)),
            Err(e) => return fail(&format!("{}: {e}", args.out.display())),
        }
    };
    let mut capture = pcap::Pcap::new(format);
    // The file header at once: a reader of the stream starts before the
    // first record.
    let header = capture.take();
    if let Err(e) = out.write_all(&header).and_then(|()| out.flush()) {
        return fail(&format!("{}: {e}", args.out.display()));
    }
    let status = each_item(&args.files, &args.filter.filter(), |_, item| {
        capture.item(item);
        out.write_all(&capture.take())?;
        out.flush()
    });
    let untimed = capture.untimed;
    let rest = capture.finish();
    if let Err(e) = out.write_all(&rest).and_then(|()| out.flush()) {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            return fail(&format!("{}: {e}", args.out.display()));
        }
    }
    if untimed > 0 {
        eprintln!(
            "tap: {untimed} records carry no time of their own (tap_http's record_stream_info \
             was off): their packets are stamped with the time tap read them"
        );
    }
    status
}

fn suggest(args: &Suggest) -> ExitCode {
    let input = match Input::read(&args.files) {
        Ok(input) => input,
        Err(e) => return fail(&e),
    };
    let selected = input.selected(&args.filter.filter());
    let http: Vec<_> = selected.iter().filter_map(|r| r.as_http()).collect();
    let format = match args.format {
        PolicyFormat::L7Policy => Format::L7Policy,
        PolicyFormat::Cnp => Format::Cnp,
    };
    match policy::run_suggest(&http, &args.options(), &format, args.report.as_deref()) {
        Ok(text) => {
            let _ = writeln!(std::io::stdout(), "{text}");
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e),
    }
}

fn check(args: &Check) -> ExitCode {
    let input = match Input::read(&args.files) {
        Ok(input) => input,
        Err(e) => return fail(&e),
    };
    let selected = input.selected(&args.filter.filter());
    let http: Vec<_> = selected.iter().filter_map(|r| r.as_http()).collect();
    let config = match policy::load(&args.policy) {
        Ok(config) => config,
        Err(e) => return fail(&e),
    };
    // A gate that checked nothing, or skipped what it could not read, proves
    // nothing.
    if !input.errors.is_empty() {
        return fail("check: some input is not tap records (skipped above)");
    }
    if http.is_empty() {
        return fail("check: no HTTP records to check");
    }
    let (text, denied) = policy::run_check(&config, &http, args.json);
    let _ = write!(std::io::stdout(), "{text}");
    if denied {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn completions(shell: Shell) -> ExitCode {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "tap", &mut script);
    let _ = std::io::stdout().write_all(&script);
    ExitCode::SUCCESS
}
