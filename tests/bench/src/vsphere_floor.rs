//! vSphere's per-request floor (issue 19, point 2): one raw keep-alive HTTP POST of the SOAP
//! body our `snapshot_current` sends (`RetrievePropertiesEx` of the VM's `name` and
//! `snapshot`), against the simulator, with no XML parsed, measured in the same process and on
//! the same simulator and tree (6 snapshots) as our `snapshot_current`, interleaved.
//!
//! Beside it, for comparison, the same request through the off-the-shelf clients the plugin used
//! before its own blocking HTTP/1.1 client (plugins/vsphere/src/http.rs): reqwest's async client
//! driven with `block_on` on a current-thread runtime (its per-call set-up, hyper, the runtime's
//! reactor), and reqwest's blocking client (plus its hop to a runtime thread and back). The
//! plugin's own client does what the raw POST does, so ours minus the raw POST (as a `String`)
//! is the rest of ours: the host → plugin call, building the body, parsing the answer, building
//! the tree. This thread's CPU time per request is printed for ours and for the raw POST (the
//! simulator's time and the wake-ups are in both walls); `VSPHERE_FLOOR_PROFILE=<n>` runs n more
//! of each, alternating, for `perf record` of `virtplug-bench vsphere-floor <port>`.

use std::{
    io::{BufReader, Write},
    net::TcpStream,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use virtplug_host::{Connection, Registry};

use crate::{
    proc,
    vsphere::{PASSWORD, Sim, USER, VM, read_body, read_head, sim_path},
};

const N: usize = 200;

/// This thread's CPU time (user and system): what a request costs this side, whatever the
/// simulator and the scheduler add to its wall time.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: a valid timespec to fill; CLOCK_THREAD_CPUTIME_ID always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(u64::try_from(ts.tv_sec).unwrap_or(0), u32::try_from(ts.tv_nsec).unwrap_or(0))
}

const ENVELOPE_HEAD: &str = concat!(
    r#"<?xml version="1.0" encoding="UTF-8"?>"#,
    "\n",
    r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>"#
);
const ENVELOPE_TAIL: &str = "</soapenv:Body></soapenv:Envelope>";

/// One kept-alive HTTP/1.1 connection that POSTs SOAP bodies.
struct Raw {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    port: u16,
    cookie: Option<String>,
    action: String,
}

impl Raw {
    fn connect(port: u16) -> Result<Self> {
        let s = TcpStream::connect(("127.0.0.1", port))?;
        s.set_nodelay(true)?;
        Ok(Self {
            reader: BufReader::new(s.try_clone()?),
            writer: s,
            port,
            cookie: None,
            action: "urn:vim25".to_owned(),
        })
    }

    /// POSTs `body` in the envelope; returns the response body.
    fn post(&mut self, body: &str) -> Result<Vec<u8>> {
        let envelope = format!("{ENVELOPE_HEAD}{body}{ENVELOPE_TAIL}");
        let cookie = self.cookie.as_ref().map(|c| format!("Cookie: vmware_soap_session={c}\r\n")).unwrap_or_default();
        let request = format!(
            "POST /sdk HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: text/xml; charset=utf-8\r\nSOAPAction: \"{}\"\r\n{cookie}Content-Length: {}\r\n\r\n{envelope}",
            self.port,
            self.action,
            envelope.len()
        );
        self.writer.write_all(request.as_bytes())?;
        let (status, headers) = read_head(&mut self.reader)?.context("simulator closed the connection")?;
        for (k, v) in &headers {
            if k.eq_ignore_ascii_case("set-cookie")
                && let Some(val) = v.strip_prefix("vmware_soap_session=")
            {
                self.cookie = Some(val.split(';').next().unwrap_or("").trim().to_owned());
            }
        }
        let body = read_body(&mut self.reader, &headers, false)?;
        if !status.contains(" 200") {
            bail!("{status}: {}", String::from_utf8_lossy(&body));
        }
        Ok(body)
    }
}

/// The text of the first `<tag …>text</tag>` in `xml`.
fn between<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let start = xml.find(&format!("<{tag}"))?;
    let after = &xml[start..];
    let open_end = after.find('>')? + 1;
    let close = after.find(&format!("</{tag}>"))?;
    after.get(open_end..close)
}

/// Child side: `vsphere-floor <port>`; prints `floor <s>`, `floor_text <s>`, `ours <s>`
/// (medians per request).
pub fn one(args: &[String]) -> Result<()> {
    let port: u16 = args.first().context("port")?.parse()?;
    let uri = format!("vsphere://{USER}@127.0.0.1:{port}/?no_verify=1&transport=http");
    let registry = Registry::from_env()?;
    let conn = Connection::open(&registry, &uri, false)?;
    let create =
        |name: &str| conn.snapshot_create(VM, &format!("<domainsnapshot><name>{name}</name></domainsnapshot>"), 0);
    for name in ["base", "p1", "p2", "p3", "p4"] {
        create(name)?;
    }
    conn.snapshot_revert(VM, "base", 0)?;
    create("b0")?;

    let mut raw = Raw::connect(port)?;
    let sc = String::from_utf8(raw.post(
        r#"<RetrieveServiceContent xmlns="urn:vim25"><_this type="ServiceInstance">ServiceInstance</_this></RetrieveServiceContent>"#,
    )?)?;
    let field =
        |tag: &str| between(&sc, tag).map(str::to_owned).with_context(|| format!("no {tag} in service content"));
    let (sm, pc, si) = (field("sessionManager")?, field("propertyCollector")?, field("searchIndex")?);
    raw.action = format!("urn:vim25/{}", field("apiVersion")?);
    raw.post(&format!(
        r#"<Login xmlns="urn:vim25"><_this type="SessionManager">{sm}</_this><userName>{USER}</userName><password>{PASSWORD}</password></Login>"#
    ))?;
    let found = String::from_utf8(raw.post(&format!(
        r#"<FindByInventoryPath xmlns="urn:vim25"><_this type="SearchIndex">{si}</_this><inventoryPath>ha-datacenter/vm/{VM}</inventoryPath></FindByInventoryPath>"#
    ))?)?;
    let vm = between(&found, "returnval").context("VM not found")?.to_owned();
    // The body `snapshot_current` sends (plugins/vsphere/src/vim.rs, retrieve_body; the paths
    // of snap.rs `tree` after conn.rs `read_vm`'s `name`).
    let body = format!(
        r#"<RetrievePropertiesEx xmlns="urn:vim25"><_this type="PropertyCollector">{pc}</_this><specSet><propSet><type>VirtualMachine</type><all>false</all><pathSet>name</pathSet><pathSet>snapshot</pathSet></propSet><objectSet><obj type="VirtualMachine">{vm}</obj></objectSet></specSet><options><maxObjects>1000</maxObjects></options></RetrievePropertiesEx>"#
    );
    let answer = String::from_utf8(raw.post(&body)?)?;
    if !answer.contains("<name>b0</name>") {
        bail!("the raw answer has not the tree: {answer}");
    }
    // reqwest's async client, set up and driven as the plugin did before its own client.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let client = {
        let _in_rt = rt.enter();
        reqwest::Client::builder().tcp_nodelay(true).pool_max_idle_per_host(4).build()?
    };
    let blocking = reqwest::blocking::Client::builder().tcp_nodelay(true).pool_max_idle_per_host(4).build()?;
    let url = format!("http://127.0.0.1:{port}/sdk");
    let cookie = format!("vmware_soap_session={}", raw.cookie.clone().unwrap_or_default());
    let envelope = format!("{ENVELOPE_HEAD}{body}{ENVELOPE_TAIL}");
    let action = format!("\"{}\"", raw.action);
    let via_client = || -> Result<String> {
        Ok(rt.block_on(async {
            client
                .post(&url)
                .header("Content-Type", "text/xml; charset=utf-8")
                .header("SOAPAction", &action)
                .header("Cookie", &cookie)
                .body(envelope.clone())
                .send()
                .await?
                .text()
                .await
        })?)
    };
    let via_blocking = || -> Result<String> {
        Ok(blocking
            .post(&url)
            .header("Content-Type", "text/xml; charset=utf-8")
            .header("SOAPAction", &action)
            .header("Cookie", &cookie)
            .body(envelope.clone())
            .send()?
            .text()?)
    };
    let (mut floor, mut text, mut ours, mut http, mut http_blocking) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut text_cpu, mut ours_cpu) = (Vec::new(), Vec::new());
    for _ in 0..N {
        let start = Instant::now();
        let answer = via_client()?;
        http.push(start.elapsed());
        let start = Instant::now();
        let answer_blocking = via_blocking()?;
        http_blocking.push(start.elapsed());
        if !answer.contains("<name>b0</name>") || !answer_blocking.contains("<name>b0</name>") {
            bail!("the client's answer has not the tree");
        }
        let start = Instant::now();
        let bytes = raw.post(&body)?;
        floor.push(start.elapsed());
        let (start, cpu) = (Instant::now(), thread_cpu());
        let s = String::from_utf8(raw.post(&body)?)?;
        text.push(start.elapsed());
        text_cpu.push(thread_cpu().saturating_sub(cpu));
        let (start, cpu) = (Instant::now(), thread_cpu());
        let current = conn.snapshot_current(VM)?;
        ours.push(start.elapsed());
        ours_cpu.push(thread_cpu().saturating_sub(cpu));
        if bytes.len() != s.len() || current.map(|c| c.name).as_deref() != Some("b0") {
            bail!("unexpected answer");
        }
    }
    // `VSPHERE_FLOOR_PROFILE=<n>`: n more of ours and of the raw POST as a String, alternating,
    // for a profiler (`perf record`) to compare the two sides of a request.
    let extra: usize = std::env::var("VSPHERE_FLOOR_PROFILE").ok().and_then(|v| v.parse().ok()).unwrap_or(0);
    for _ in 0..extra {
        conn.snapshot_current(VM)?;
        String::from_utf8(raw.post(&body)?)?;
    }
    // Leaves the simulator as it found it.
    conn.snapshot_delete(VM, "base", virtplug_host::flags::snapshot_delete::CHILDREN)?;
    let median = |v: &mut Vec<Duration>| proc::median(v).as_secs_f64();
    println!("floor {}", median(&mut floor));
    println!("floor_text {}", median(&mut text));
    println!("ours {}", median(&mut ours));
    println!("floor_text_cpu {}", median(&mut text_cpu));
    println!("ours_cpu {}", median(&mut ours_cpu));
    println!("client {}", median(&mut http));
    println!("client_blocking {}", median(&mut http_blocking));
    println!("bytes {}", answer.len());
    Ok(())
}

/// What [`one`] measured (seconds per request, except `bytes`).
pub struct Floor {
    /// One raw keep-alive POST, the answer read as bytes.
    pub floor: f64,
    /// The same, the answer then made a `String`.
    pub floor_text: f64,
    /// The same request through reqwest's async client on a current-thread runtime.
    pub client: f64,
    /// The same through reqwest's blocking client.
    pub client_blocking: f64,
    /// Our `snapshot_current` through the host API.
    pub ours: f64,
    /// CPU time of this side (the calling thread) per raw POST read as a `String`.
    pub floor_text_cpu: f64,
    /// CPU time of this side per `snapshot_current`.
    pub ours_cpu: f64,
    /// The answer's size.
    pub bytes: f64,
}

/// Parent side: runs [`one`] on a fresh simulator.
pub fn measure() -> Result<Option<Floor>> {
    let sim_bin = sim_path();
    if !sim_bin.is_file() {
        return Ok(None);
    }
    let sim = Sim::start(&sim_bin)?;
    let exe = std::env::current_exe()?;
    let out = proc::run(
        std::process::Command::new(exe)
            .args(["vsphere-floor", &sim.port.to_string()])
            .env("VIRTPLUG_VSPHERE_PASSWORD", PASSWORD),
    )?;
    let get = |k: &str| {
        out.stdout
            .lines()
            .find_map(|l| l.strip_prefix(k).and_then(|v| v.strip_prefix(' ')).and_then(|v| v.trim().parse().ok()))
            .with_context(|| format!("vsphere-floor printed no {k}"))
    };
    Ok(Some(Floor {
        floor: get("floor")?,
        floor_text: get("floor_text")?,
        client: get("client")?,
        client_blocking: get("client_blocking")?,
        ours: get("ours")?,
        floor_text_cpu: get("floor_text_cpu")?,
        ours_cpu: get("ours_cpu")?,
        bytes: get("bytes")?,
    }))
}
