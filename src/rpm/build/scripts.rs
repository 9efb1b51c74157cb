//! Step 4 of a build: the scriptlets.
//!
//! In: the [`PackageSpec`] (its units, accounts and `[scripts]`). Out:
//! [`Scripts`]: one body per slot that has one (the scriptlets ingot
//! generates first: systemd's `%post`/`%preun`/`%postun`, the sysusers
//! `%pre`; then the user's), the `Requires(…)` on systemd that systemd's RPM
//! macros add, the `/bin/sh` interpreter dependency of every slot, and the
//! header's script tags.
//!
//! Every scriptlet runs under `/bin/sh`. This step never runs a script and
//! never changes the user's text beyond what rpmbuild does (trailing
//! whitespace dropped, generated and user parts joined by a blank line).

use ::rpm::{Dependency as RpmDep, DependencyFlags as DF, Scriptlet};

use crate::error::Result;
use crate::rpm::header::{NewEntry, tag};
use crate::rpm::plan;
use crate::spec::package::PackageSpec;
use crate::systemd;

/// The interpreter of every scriptlet.
const SHELL: &str = "/bin/sh";

/// One scriptlet slot with a body.
pub(super) struct Script {
    /// The slot's tag (`PREIN`, ...).
    tag: u32,
    /// Its program tag (`PREINPROG`, ...).
    prog_tag: u32,
    /// The dependency flag of its interpreter (`SCRIPT_PRE`, ...).
    phase: DF,
    body: String,
}

/// The package's scriptlets and what they require.
pub(super) struct Scripts {
    /// In slot order: pre, post, preun, postun, pretrans, posttrans.
    pub(super) slots: Vec<Script>,
    /// `Requires(post)`, `Requires(preun)`, `Requires(postun)` on systemd
    /// when the package ships units; `Requires(pre)` when it declares
    /// accounts.
    pub(super) requires: Vec<RpmDep>,
}

/// The scripts of one slot, generated ones first, as one body. Like
/// rpmbuild, trailing whitespace is dropped.
fn join_scripts(parts: &[Option<String>]) -> Option<String> {
    let parts: Vec<&str> = parts
        .iter()
        .flatten()
        .map(|s| s.trim_end())
        .filter(|s| !s.is_empty())
        .collect();
    if parts.is_empty() {
        None
    } else {
        Some(parts.join("\n\n"))
    }
}

/// The scriptlets of `spec`. An error only when its accounts cannot be
/// written as a sysusers.d file.
pub(super) fn gather(spec: &PackageSpec) -> Result<Scripts> {
    let mut requires = Vec::new();
    // What systemd's RPM macros add: %systemd_requires, and the scriptlets
    // of %systemd_post / %systemd_preun / %systemd_postun_with_restart.
    let units: Vec<String> = spec.units.iter().map(|u| u.name.clone()).collect();
    let (mut post, mut preun, mut postun) = (None, None, None);
    if !units.is_empty() {
        requires.push(RpmDep::script_post("systemd"));
        requires.push(RpmDep::script_preun("systemd"));
        requires.push(RpmDep::script_postun("systemd"));
        post = Some(systemd::scriptlets::post(&units));
        preun = Some(systemd::scriptlets::preun(&units));
        postun = Some(systemd::scriptlets::postun(&units));
    }
    let mut pre = None;
    if let Some(text) = plan::sysusers_text(spec)? {
        requires.push(RpmDep::script_pre("systemd"));
        pre = Some(systemd::scriptlets::sysusers_pre(
            &format!("{}.conf", spec.name),
            &text,
        ));
    }
    let s = &spec.scripts;
    let slot = |tag, prog_tag, phase, body: Option<String>| {
        body.map(|body| Script {
            tag,
            prog_tag,
            phase,
            body,
        })
    };
    let slots = [
        slot(
            tag::PREIN,
            tag::PREINPROG,
            DF::SCRIPT_PRE,
            join_scripts(&[pre, s.pre.clone()]),
        ),
        slot(
            tag::POSTIN,
            tag::POSTINPROG,
            DF::SCRIPT_POST,
            join_scripts(&[post, s.post.clone()]),
        ),
        slot(
            tag::PREUN,
            tag::PREUNPROG,
            DF::SCRIPT_PREUN,
            join_scripts(&[preun, s.preun.clone()]),
        ),
        slot(
            tag::POSTUN,
            tag::POSTUNPROG,
            DF::SCRIPT_POSTUN,
            join_scripts(&[postun, s.postun.clone()]),
        ),
        slot(
            tag::PRETRANS,
            tag::PRETRANSPROG,
            DF::PRETRANS,
            join_scripts(std::slice::from_ref(&s.pretrans)),
        ),
        slot(
            tag::POSTTRANS,
            tag::POSTTRANSPROG,
            DF::POSTTRANS,
            join_scripts(std::slice::from_ref(&s.posttrans)),
        ),
    ]
    .into_iter()
    .flatten()
    .collect();
    Ok(Scripts { slots, requires })
}

impl Scripts {
    /// The interpreter dependency of every slot (`/bin/sh` flagged with
    /// the slot's phase), in slot order.
    pub(super) fn interpreters(&self) -> impl Iterator<Item = RpmDep> + '_ {
        self.slots.iter().map(|s| RpmDep {
            name: SHELL.into(),
            flags: DF::INTERP | s.phase,
            version: String::new(),
        })
    }

    /// Each slot's body and program.
    pub(super) fn tags(&self) -> Vec<NewEntry> {
        let mut h = Vec::with_capacity(2 * self.slots.len());
        for s in &self.slots {
            // As a `Scriptlet` with `/bin/sh` as its program writes itself.
            let sc = Scriptlet::new(s.body.as_str()).prog(vec![SHELL]);
            h.push(NewEntry::string(s.tag, &sc.script));
            h.push(NewEntry::string(s.prog_tag, SHELL));
        }
        h
    }
}
