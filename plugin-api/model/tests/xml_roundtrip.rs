//! Every value the parser accepts is formatted back: `parse(format(parse(x))) == parse(x)` and
//! formatting is stable, over many edge cases of `<domainsnapshot>` (issue 11.4: a dump must
//! always redefine the same snapshot). Also the exact output for a disk `<source>` with the
//! child elements libvirt keeps (issue 11.7).
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly on unexpected errors")]

use virtplug_model::{
    codes,
    xml::{self, FormatFlags, ParseFlags, SnapshotDef},
};

const REDEFINE: ParseFlags = ParseFlags { redefine: true, internal: false, offline: false };
const INTERNAL: ParseFlags = ParseFlags { redefine: true, internal: true, offline: false };
const SECURE: FormatFlags = FormatFlags { secure: true, internal: false, current: false };

fn wrap(state: &str, inner: &str) -> String {
    format!(
        "<domainsnapshot>\n  <name>s</name>\n  <state>{state}</state>\n  <creationTime>5</creationTime>\n{inner}</domainsnapshot>\n"
    )
}

/// Parses `x`, formats, parses the output again: the definitions must be equal and the second
/// formatting identical to the first. Returns the first output.
fn check(label: &str, x: &str, flags: ParseFlags) -> String {
    let def = xml::parse(x, flags).unwrap_or_else(|e| panic!("{label}: {e}"));
    let fflags = FormatFlags { secure: true, internal: flags.internal, current: def.active == Some(true) };
    let once = xml::format(&def, None, fflags);
    let again = xml::parse(&once, flags).unwrap_or_else(|e| panic!("{label}: reparse: {e}\n{once}"));
    assert_eq!(again, def, "{label}: definition changed through\n{once}");
    assert_eq!(xml::format(&again, None, fflags), once, "{label}: output not stable");
    once
}

const DOMAIN: &str =
    "  <domain type='kvm'>\n    <name>d</name>\n    <uuid>6695eb01-f6a4-8304-79aa-97f2502e193f</uuid>\n  </domain>\n";

#[test]
fn redefine_round_trips() {
    let cases: &[(&str, String)] = &[
        ("creation time 0", wrap("running", "").replace(">5<", ">0<")),
        ("negative creation time", wrap("running", "").replace(">5<", ">-86400<")),
        ("creation time with spaces", wrap("running", "").replace(">5<", "> 7 <")),
        ("empty description", wrap("running", "  <description></description>\n")),
        ("blank description", wrap("running", "  <description>  \n </description>\n")),
        ("escaped description", wrap("running", "  <description>&lt;&amp;&apos;&quot;&#x9;x</description>\n")),
        ("CDATA description", wrap("running", "  <description><![CDATA[a <b> & c]]></description>\n")),
        ("spaces in names", wrap("running", "  <parent>\n    <name> p q </name>\n  </parent>\n").replace("<name>s</name>", "<name> s </name>")),
        ("empty parent", wrap("running", "  <parent>\n    <name></name>\n  </parent>\n")),
        ("every state", wrap("crashed", "")),
        ("disk-snapshot state", wrap("disk-snapshot", "  <memory snapshot='no'/>\n")),
        ("memory no", wrap("shutoff", "  <memory snapshot='no'/>\n")),
        ("memory internal", wrap("paused", "  <memory snapshot='internal'/>\n")),
        ("memory file only", wrap("running", "  <memory file='/m'/>\n")),
        ("memory without attributes", wrap("running", "  <memory/>\n")),
        ("memory empty file", wrap("running", "  <memory snapshot='internal' file=''/>\n")),
        (
            "every disk kind",
            wrap(
                "running",
                "  <disks>
    <disk name='a'/>
    <disk name='b' snapshot='manual'/>
    <disk name='c' type='block'/>
    <disk name='d' type='network'><source protocol='nbd'><host name='h'/></source></disk>
    <disk name='e'><driver><metadata_cache><max_size unit='KiB'>4</max_size></metadata_cache></driver></disk>
    <disk name='f'><driver type='qcow2'><metadata_cache><max_size unit='bytes'>0</max_size></metadata_cache></driver></disk>
    <disk name='g' type='network'><driver type='raw'/><source protocol='nbd'><host name='h' port='10809'/></source></disk>
    <disk name='h' type='network'><driver type='raw'/><source><host socket='/s' transport='unix'/></source></disk>
    <disk name='i' snapshot='external'><driver type='qcow2'/><source><seclabel model='dac' relabel='no'/></source></disk>
    <disk name='j'><source file=''/></disk>
    <disk name='k' type='block'><source dev='/dev/x'/></disk>
    <disk name='l' type='network'><source protocol='rbd' name='p/i'/></disk>
    <disk name='m' type='file'><source file='/a&amp;b'><seclabel model='selinux' relabel='yes'><label>x&lt;y</label></seclabel></source></disk>
  </disks>
",
            ),
        ),
        ("legacy domain uuid", wrap("running", "  <domain>\n    <uuid> 6695eb01-f6a4-8304-79aa-97f2502e193f </uuid>\n  </domain>\n")),
        ("domain with empty type", wrap("running", "  <domain type=''>\n    <uuid>6695eb01f6a4830479aa97f2502e193f</uuid>\n  </domain>\n")),
        ("full domain", wrap("running", DOMAIN)),
        ("inactive domain and cookie", wrap("running", &format!("{DOMAIN}  <inactiveDomain type='kvm'>\n    <name>d</name>\n  </inactiveDomain>\n  <cookie>\n    <cpu mode='custom'/>\n  </cookie>\n"))),
        ("offline cookie is dropped", wrap("shutoff", "  <cookie>\n    <cpu/>\n  </cookie>\n")),
    ];
    for (label, x) in cases {
        check(label, x, REDEFINE);
    }
    check("internal, current", &wrap("running", "  <active>1</active>\n"), INTERNAL);
    check("internal, not current", &wrap("running", "  <active>0</active>\n"), INTERNAL);
}

#[test]
fn zero_creation_time_is_written_back() {
    let x = wrap("running", "").replace(">5<", ">0<");
    let def = xml::parse(&x, REDEFINE).unwrap();
    assert_eq!(def.creation_time, 0);
    let dump = xml::format(&def, None, FormatFlags::default());
    assert!(dump.contains("  <creationTime>0</creationTime>\n"), "{dump}");
    assert_eq!(xml::parse(&dump, REDEFINE).unwrap(), def);
    // A plain-create definition (no state, no time yet) still prints no creationTime, as virsh's
    // --print-xml.
    let plain = xml::format(&SnapshotDef { name: "x".into(), ..Default::default() }, None, FormatFlags::default());
    assert_eq!(plain, "<domainsnapshot>\n  <name>x</name>\n</domainsnapshot>\n");
}

#[test]
fn legacy_uuid_is_kept_without_a_domain_uuid() {
    let x = wrap("running", "  <domain>\n    <uuid>6695eb01-f6a4-8304-79aa-97f2502e193f</uuid>\n  </domain>\n");
    let out = check("legacy", &x, REDEFINE);
    assert!(out.contains("  <domain>\n    <uuid>6695eb01-f6a4-8304-79aa-97f2502e193f</uuid>\n  </domain>\n"), "{out}");
}

#[test]
fn disks_without_path_or_format_keep_nothing_libvirt_drops() {
    let x = wrap(
        "running",
        "  <disks>\n    <disk name='vda' type='block'><source><seclabel model='dac' relabel='no'/></source><driver><metadata_cache><max_size>9</max_size></metadata_cache></driver></disk>\n  </disks>\n",
    );
    let def = xml::parse(&x, REDEFINE).unwrap();
    let d = &def.disks[0];
    assert_eq!((d.disk_type, d.metadata_cache_max_size, d.source_children.len()), (None, None, 0));
    assert!(check("bare disk", &x, REDEFINE).contains("    <disk name='vda'/>\n"));
}

/// Children of `<source>` in scrambled order, double quotes and odd spacing come out in
/// libvirt's order and formatting; unknown children, `<cookies>` (SECURE-only) and the
/// seclabel of a network source are dropped, as libvirt does.
#[test]
fn source_children_are_kept_and_formatted_as_libvirt() {
    let x = "<domainsnapshot><name>s</name><disks>
<disk name='hde' snapshot='external' type='file'>
  <source file='/path/to/new2'>
        <reservations managed=\"no\">
   <source type='unix' path='/pr.sock' mode='client'/>
        </reservations>
    <bogus/>
    <seclabel   model=\"dac\"  relabel='no' />
    <encryption format='luks'><secret type='passphrase' uuid='0a81f5b2-8403-7b23-c8d6-21ccc2f80d6f'/></encryption>
    <auth username='u'><secret type='iscsi' usage='x'/></auth>
    <slices><slice type='storage' offset='512' size='1024'/></slices>
    <seclabel model='selinux' relabel='yes'><label>system_u:object_r:svirt_image_t:s0</label></seclabel>
  </source>
</disk>
<disk name='hdg' type='network'><source protocol='https' name='p/q' query='x=1'>
  <timeout seconds='10'/><readahead size='65536'/><cookies><cookie name='c'>secret</cookie></cookies>
  <ssl verify='no'/><seclabel model='dac' relabel='no'/><host name='h' port='443'/><config file='/c'/>
  <snapshot name='snap'/><initiator><iqn name='iqn.2013-07.com.example:iscsi-pool'/></initiator>
  <identity user='u'/>
</source></disk>
<disk name='hdh' type='network'><source protocol='nfs' name='/export/x'><identity user='u' group='g'/><ssl verify='no'/></source></disk>
</disks></domainsnapshot>";
    let def = xml::parse(x, ParseFlags::default()).unwrap();
    let out = xml::format(&def, None, SECURE);
    assert_eq!(
        out,
        "<domainsnapshot>
  <name>s</name>
  <disks>
    <disk name='hde' snapshot='external' type='file'>
      <source file='/path/to/new2'>
        <slices>
          <slice type='storage' offset='512' size='1024'/>
        </slices>
        <seclabel model='dac' relabel='no'/>
        <seclabel model='selinux' relabel='yes'>
          <label>system_u:object_r:svirt_image_t:s0</label>
        </seclabel>
        <auth username='u'>
          <secret type='iscsi' usage='x'/>
        </auth>
        <encryption format='luks'>
          <secret type='passphrase' uuid='0a81f5b2-8403-7b23-c8d6-21ccc2f80d6f'/>
        </encryption>
        <reservations managed='no'>
          <source type='unix' path='/pr.sock' mode='client'/>
        </reservations>
      </source>
    </disk>
    <disk name='hdg' snapshot='external' type='network'>
      <source protocol='https' name='p/q'>
        <host name='h' port='443'/>
        <snapshot name='snap'/>
        <config file='/c'/>
        <initiator>
          <iqn name='iqn.2013-07.com.example:iscsi-pool'/>
        </initiator>
        <ssl verify='no'/>
        <readahead size='65536'/>
        <timeout seconds='10'/>
      </source>
    </disk>
    <disk name='hdh' snapshot='external' type='network'>
      <source protocol='nfs' name='/export/x'>
        <identity user='u' group='g'/>
      </source>
    </disk>
  </disks>
</domainsnapshot>
"
    );
    assert_eq!(xml::parse(&out, ParseFlags::default()).unwrap(), def);
}

/// libvirt's own `disk-seclabel` case shape: a file source with one seclabel, redefined.
#[test]
fn seclabel_case_is_byte_identical() {
    let x = "<domainsnapshot>
  <name>my snap</name>
  <description>d</description>
  <state>shutoff</state>
  <creationTime>581484660</creationTime>
  <disks>
    <disk name='hde' snapshot='external' type='file'>
      <source file='/path/to/new2'>
        <seclabel model='dac' relabel='no'/>
      </source>
    </disk>
  </disks>
  <domain>
    <uuid>9d37b878-a7cc-9f9a-b78f-49b3abad25a8</uuid>
  </domain>
</domainsnapshot>
";
    let def = xml::parse(x, REDEFINE).unwrap();
    assert_eq!(xml::format(&def, Some("9d37b878-a7cc-9f9a-b78f-49b3abad25a8"), SECURE), x);
}

#[test]
fn description_limit() {
    let limit = virtplug_model::limits::MAX_DESCRIPTION_BYTES;
    let at = wrap("running", &format!("  <description>{}</description>\n", "d".repeat(limit)));
    assert_eq!(xml::parse(&at, REDEFINE).unwrap().description.map(|d| d.len()), Some(limit));
    let over = wrap("running", &format!("  <description>{}&amp;</description>\n", "d".repeat(limit)));
    let e = xml::parse(&over, REDEFINE).unwrap_err();
    assert_eq!(
        (e.code, e.message.as_str()),
        (codes::XML_ERROR, "snapshot description too long: 1048577 bytes, more than 1048576")
    );
}
