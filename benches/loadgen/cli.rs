//! Command line: the options of a harness run, their defaults and the usage text.
//! Kept apart so every other module reads settled values from `Opts` instead of flags.

use std::env;
use std::net::SocketAddr;
use std::path::PathBuf;

use crate::client::Transport;
use crate::peers::Peer;
use crate::publish::PublishMode;
use crate::scenarios::{Line, Scenario};
use crate::Res;

/// Per-process subscriber count; stays clear of the 20000 open-files hard limit.
const DEFAULT_PER_CLIENT: usize = 9000;

/// Every setting of a harness run: the defaults with the flags applied.
pub struct Opts {
    pub scenarios: Vec<Scenario>,
    pub peers: Vec<Peer>,
    pub runs: usize,
    pub subs: Option<usize>,
    pub messages: Option<usize>,
    pub size: usize,
    pub rate: f64,
    pub burst: bool,
    /// fanout: how each publisher connection sends (default: waits for each reply).
    pub publish: PublishMode,
    /// fanout: subscribers stop reading while the messages are published.
    pub hold_reads: bool,
    pub transports: Option<Vec<Transport>>,
    pub channels: Option<usize>,
    pub publishers: Option<usize>,
    /// churn: connect/disconnect rounds.
    pub rounds: usize,
    pub sizes: Vec<usize>,
    pub per_client: usize,
    pub concurrency: usize,
    pub crier_bin: PathBuf,
    pub server_workers: usize,
    pub server_args: Vec<String>,
    pub target: Option<SocketAddr>,
    pub server_cmd: Option<String>,
    pub server_pid: Option<i32>,
    pub nchan_conf: PathBuf,
    pub wait_s: u64,
    pub seed: u64,
    /// Subscribers over TLS (a second, TLS port on the server; publishers stay plaintext).
    pub tls: bool,
    /// cluster: the lines to measure (default single, single+redis, nodes).
    pub lines: Vec<Line>,
    /// cluster: crier nodes of the multi-node line.
    pub nodes: usize,
    /// cluster: the paced latency phases, (publisher connections, offered msgs/s).
    pub paced: Vec<(usize, f64)>,
    /// cluster: seconds each paced phase publishes for.
    pub paced_secs: f64,
    /// cluster: publishes of the publish-throughput burst.
    pub pub_messages: usize,
}

impl Opts {
    /// Subscribers: `--subs`, default 5,000 for churn (one round) and 10,000 otherwise.
    pub fn subscribers(&self, scenario: Scenario) -> usize {
        let default = if scenario == Scenario::Churn {
            5000
        } else {
            10_000
        };
        self.subs.unwrap_or(default)
    }

    /// Channels the subscribers spread over: `--channels`, default 1,000 for channels,
    /// 100 for churn; fanout puts everyone on one channel whatever is given.
    pub fn channel_count(&self, scenario: Scenario) -> usize {
        match scenario {
            Scenario::Channels => self.channels.unwrap_or(1000),
            Scenario::Churn => self.channels.unwrap_or(100),
            _ => 1,
        }
    }

    /// Publisher connections: `--publishers`, default 4 for channels and cluster's bursts,
    /// 1 for fanout.
    pub fn publisher_conns(&self, scenario: Scenario) -> usize {
        let default = match scenario {
            Scenario::Channels | Scenario::Cluster => 4,
            _ => 1,
        };
        self.publishers.unwrap_or(default)
    }

    /// Messages to publish in `scenario`: `--messages`, default 200 for fanout and
    /// cluster's delivery burst, 20,000 for channels.
    pub fn message_count(&self, scenario: Scenario) -> usize {
        let default = if scenario == Scenario::Channels {
            20_000
        } else {
            200
        };
        self.messages.unwrap_or(default)
    }
}

pub const USAGE: &str = "\
usage: cargo bench --bench loadgen -- <scenario> [options]
scenarios: idle-memory | fanout | channels | connect-rate | churn | cluster
           | all (every scenario but cluster, which needs redis-server)
  --peer crier|floor|nchan|all   server(s) to measure, comma list allowed (default crier;
                                 several peers add a comparison table with ratios)
  --runs K                       repetitions, medians reported (default 3)
  --transport T[,T..]            sse | ws | ws-deflate (scenario default otherwise)
  --subs N | --subscribers N     subscribers (default 10000; churn: per round, 5000;
                                 cluster: spread evenly over the nodes)
  --messages M                   messages (fanout 200, channels 20000, cluster's delivery
                                 burst 200)
  --size S                       payload bytes (default 128)
  --rate R | --burst             fanout: R msgs/s offered over all publisher connections
                                 (default 20), or back to back
  --publish wait|pipelined       fanout: each connection waits for every reply before the
                                 next request (default), or writes without waiting
  --publishers P                 publisher connections, messages split round-robin
                                 (fanout 1, channels 4, cluster's bursts 4)
  --hold-reads                   fanout: subscribers stop reading until the server has
                                 written everything (server-side rate, e.g. for workers)
  --channels C                   channels: channel count (default 1000; churn 100)
  --rounds R                     churn: connect/disconnect rounds (default 100)
  --sizes A,B,C                  idle-memory subscriber counts (default 1000,10000,19000)
  --per-client N                 subscribers per client process (default 9000)
  --concurrency N                handshakes in flight per client process (default 256)
  --crier-bin PATH               crier binary (default target/release/crier, or $CRIER_BIN)
  --server-workers N             crier --workers (default 1)
  --server-arg ARG               extra crier argument (repeatable)
  --target http://HOST:PORT      use a running server (memory/CPU need --server-pid)
  --server-cmd 'CMD {port}'      start this command as the server ({port}, {addr})
  --nchan-conf PATH              nginx/nchan template (default benches/peers/nchan.conf;
                                 with --tls benches/peers/nchan-ssl.conf)
  --tls                          subscribers connect over TLS to a second port (plaintext
                                 port + 1) with a generated certificate; publishers stay
                                 plaintext; full handshakes (no resumption); not the floor
  --wait S                       max seconds to wait for deliveries (default 60)
cluster (crier nodes on one redis-server; benches/README.md):
  --lines L[,L..]                single | single+redis | nodes (default all three)
  --nodes N                      crier nodes of the `nodes` line (default 2)
  --paced P@R[,P@R..]            paced latency phases: P waiting publishers to node A at R
                                 msgs/s offered in total (default 1@10,4@40)
  --paced-secs S                 seconds each paced phase publishes for (default 6)
  --pub-messages K               publishes of the publish-throughput burst (default 20000)";

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn parse_list<T>(v: &str, f: impl Fn(&str) -> Res<T>) -> Res<Vec<T>> {
    v.split(',').filter(|s| !s.is_empty()).map(f).collect()
}

fn parse_num<T: std::str::FromStr>(flag: &str, v: &str) -> Res<T> {
    v.parse().map_err(|_| format!("{flag}: bad number {v:?}"))
}

/// One paced phase of cluster, `P@R`: P publisher connections offering R msgs/s in total.
fn parse_paced(v: &str) -> Res<(usize, f64)> {
    let (p, r) = v
        .split_once('@')
        .ok_or_else(|| format!("--paced: want CONNS@RATE, got {v:?}"))?;
    let p = parse_num::<usize>("--paced", p)?.max(1);
    let r = parse_num::<f64>("--paced", r)?;
    if !(r > 0.0 && r.is_finite()) {
        return Err(format!("--paced: rate must be positive, got {v:?}"));
    }
    Ok((p, r))
}

fn parse_target(url: &str) -> Res<SocketAddr> {
    let hostport = url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap_or_default();
    let addr: SocketAddr = hostport
        .parse()
        .map_err(|_| format!("--target: want http://IP:PORT, got {url:?}"))?;
    if !addr.ip().is_loopback() {
        return Err("--target must be a loopback address".into());
    }
    Ok(addr)
}

pub fn parse_opts(args: &[String]) -> Res<Opts> {
    let mut o = Opts {
        scenarios: Vec::new(),
        peers: vec![Peer::Crier],
        runs: 3,
        subs: None,
        messages: None,
        size: 128,
        rate: 20.0,
        burst: false,
        publish: PublishMode::Wait,
        hold_reads: false,
        transports: None,
        channels: None,
        publishers: None,
        rounds: 100,
        sizes: vec![1000, 10_000, 19_000],
        per_client: DEFAULT_PER_CLIENT,
        concurrency: 256,
        crier_bin: env::var_os("CRIER_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| manifest_dir().join("target/release/crier")),
        server_workers: 1,
        server_args: Vec::new(),
        target: None,
        server_cmd: None,
        server_pid: None,
        nchan_conf: manifest_dir().join("benches/peers/nchan.conf"),
        wait_s: 60,
        seed: 0x5eed,
        tls: false,
        lines: vec![Line::Single, Line::SingleRedis, Line::Nodes],
        nodes: 2,
        paced: vec![(1, 10.0), (4, 40.0)],
        paced_secs: 6.0,
        pub_messages: 20_000,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ => (a.as_str(), None),
        };
        if flag == "--burst" {
            o.burst = true;
            continue;
        }
        if flag == "--tls" {
            o.tls = true;
            continue;
        }
        if flag == "--hold-reads" {
            o.hold_reads = true;
            continue;
        }
        if flag == "-h" || flag == "--help" {
            return Err(USAGE.into());
        }
        if !flag.starts_with("--") {
            o.scenarios.extend(Scenario::parse(flag)?);
            continue;
        }
        let v = match inline.or_else(|| it.next().cloned()) {
            Some(v) => v,
            None => return Err(format!("{flag} needs a value\n{USAGE}")),
        };
        match flag {
            "--peer" => o.peers = Peer::parse(&v)?,
            "--runs" => o.runs = parse_num::<usize>(flag, &v)?.max(1),
            "--subs" | "--subscribers" => o.subs = Some(parse_num(flag, &v)?),
            "--messages" => o.messages = Some(parse_num(flag, &v)?),
            "--size" => o.size = parse_num(flag, &v)?,
            "--rate" => o.rate = parse_num(flag, &v)?,
            "--transport" => o.transports = Some(parse_list(&v, Transport::parse)?),
            "--publish" => o.publish = PublishMode::parse(&v)?,
            "--channels" => o.channels = Some(parse_num::<usize>(flag, &v)?.max(1)),
            "--publishers" => o.publishers = Some(parse_num::<usize>(flag, &v)?.max(1)),
            "--rounds" => o.rounds = parse_num::<usize>(flag, &v)?.max(1),
            "--sizes" => o.sizes = parse_list(&v, |s| parse_num(flag, s))?,
            "--per-client" => o.per_client = parse_num::<usize>(flag, &v)?.clamp(1, 19_000),
            "--concurrency" => o.concurrency = parse_num::<usize>(flag, &v)?.max(1),
            "--crier-bin" => o.crier_bin = PathBuf::from(v),
            "--server-workers" => o.server_workers = parse_num(flag, &v)?,
            "--server-arg" => o.server_args.push(v),
            "--target" => o.target = Some(parse_target(&v)?),
            "--server-cmd" => o.server_cmd = Some(v),
            "--server-pid" => o.server_pid = Some(parse_num(flag, &v)?),
            "--nchan-conf" => o.nchan_conf = PathBuf::from(v),
            "--wait" => o.wait_s = parse_num(flag, &v)?,
            "--seed" => o.seed = parse_num(flag, &v)?,
            "--lines" => o.lines = parse_list(&v, Line::parse)?,
            "--nodes" => o.nodes = parse_num::<usize>(flag, &v)?.clamp(2, 26),
            "--paced" => o.paced = parse_list(&v, parse_paced)?,
            "--paced-secs" => o.paced_secs = parse_num::<f64>(flag, &v)?.clamp(0.5, 600.0),
            "--pub-messages" => o.pub_messages = parse_num::<usize>(flag, &v)?.max(1),
            _ => return Err(format!("unknown option {flag}\n{USAGE}")),
        }
    }
    if o.scenarios.is_empty() {
        return Err(format!("no scenario given\n{USAGE}"));
    }
    if o.tls && !args.iter().any(|a| a.starts_with("--nchan-conf")) {
        o.nchan_conf = manifest_dir().join("benches/peers/nchan-ssl.conf");
    }
    if o.target.is_some() || o.server_cmd.is_some() {
        o.peers = vec![Peer::Custom];
    }
    if o.scenarios.len() > 1 && !args.iter().any(|a| a.starts_with("--peer")) {
        o.peers = vec![Peer::Crier, Peer::Floor, Peer::Nchan];
    }
    Ok(o)
}
