//! Which microsteps get a checkpoint after them: `all`, `first` (of each step) or `auto`, the
//! cost-aware policy. `auto` makes a checkpoint after a microstep only when the re-run time it
//! saves a later resume (the microsteps since the previous checkpoint, this one included) is
//! worth more than creating it and applying it once.
//!
//! Pure: the build loop feeds in what it measured and what earlier runs recorded, and gets back
//! a [`Decision`] with its reason, which the state database keeps for `plan --explain`.

use super::schedule::Action;
use super::{Plan, PlannedMicrostep};
use crate::diag::error::{Diagnostic, Result};
use crate::recipe::OnCheckpoint;

/// How the build chooses where to checkpoint: `--microstep-checkpoints` or, when that is not
/// given, `global.checkpoint_policy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Policy {
    /// After every microstep that may have one.
    #[default]
    All,
    /// After the first microstep run in each step.
    First,
    /// Where the re-run time saved exceeds the cost.
    Auto,
}

impl Policy {
    pub const NAMES: [&'static str; 3] = ["all", "first", "auto"];

    pub fn parse(s: &str) -> Option<Policy> {
        match s {
            "all" => Some(Policy::All),
            "first" => Some(Policy::First),
            "auto" => Some(Policy::Auto),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Policy::All => "all",
            Policy::First => "first",
            Policy::Auto => "auto",
        }
    }
}

/// The policy a build uses: the command line's when given, else `global.checkpoint_policy`
/// (a variable, so `-g checkpoint_policy=auto` works too), else `all`.
pub fn chosen(plan: &Plan, command_line: Option<Policy>) -> Result<Policy> {
    if let Some(p) = command_line {
        return Ok(p);
    }
    let Some(binding) = plan.global_scope.get("checkpoint_policy") else {
        return Ok(Policy::All);
    };
    let value = crate::vars::Resolver::new(&plan.global_scope)
        .value("checkpoint_policy", crate::vars::Mode::Run)?
        .unwrap_or_default();
    Policy::parse(value.trim()).ok_or_else(|| {
        Diagnostic::at(
            &binding.value.span,
            format!("`checkpoint_policy` is `{value}`, not a checkpoint policy"),
        )
        .hint(format!(
            "use one of: {} (auto: checkpoint where the re-run time saved exceeds the cost)",
            Policy::NAMES.join(", ")
        ))
        .into()
    })
}

/// What the policy needs to know about one microstep, just after it ran.
#[derive(Debug, Clone)]
pub struct Facts<'a> {
    pub on_checkpoint: OnCheckpoint,
    /// Inside the `-B`/`-E` window.
    pub in_window: bool,
    /// Its section and step, for `first`.
    pub step: (&'a str, &'a str),
    /// Seconds a re-run of it takes: measured in this run, else recorded by an earlier run of
    /// this build dir; None when nothing is known (counted as 0).
    pub duration: Option<f64>,
    /// A checkpoint with this microstep's ID exists already: the ID is the one the plan computes
    /// now, so it is valid, and a resume can use it as it is.
    pub exists: bool,
    /// The next microstep is `atomic` without rollback commands: if it fails, it is undone by
    /// applying the checkpoint before it, which must then be this one.
    pub before_atomic: bool,
}

/// The driver's cost, in seconds, as measured in this build dir.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Costs {
    /// The latest checkpoint creation's duration; None before the first.
    pub create: Option<f64>,
    /// The latest apply's duration; None before the first (then it is taken to equal `create`:
    /// the shipped drivers' apply does the same work as their create, in reverse).
    pub apply: Option<f64>,
}

impl Costs {
    /// Creating a checkpoint and applying it once; None while creation was never measured.
    pub fn total(&self) -> Option<f64> {
        self.create.map(|c| c + self.apply.unwrap_or(c))
    }
}

/// What happens after one microstep, and why.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Decision {
    /// Make a checkpoint. `saves`: the re-run time since the previous checkpoint; `cost`: what
    /// `auto` weighed it against (None for `all` and `first`).
    Make { saves: f64, cost: Option<f64> },
    /// Make one although its cost is unknown: nothing was measured yet in this build dir, and
    /// the first checkpoint is how `auto` learns the driver's cost.
    Measure { saves: f64 },
    /// `auto`: make one whatever it costs, because the next microstep is atomic and its undo
    /// applies the checkpoint before it.
    BeforeAtomic { saves: f64 },
    /// A valid checkpoint of this ID exists: keep it, and count from here.
    Exists { saves: f64 },
    /// `auto`: the re-run time saved is not worth the cost.
    NotWorth { saves: f64, cost: f64 },
    /// Its `on_checkpoint` never allows one (disabled, redo, skip).
    Flag(OnCheckpoint),
    /// Outside the `-B`/`-E` window.
    OutsideWindow,
    /// `first`: its step has a checkpoint already.
    NotFirst,
}

impl Decision {
    /// Whether the build creates a checkpoint here.
    pub fn makes(&self) -> bool {
        matches!(
            self,
            Decision::Make { .. } | Decision::Measure { .. } | Decision::BeforeAtomic { .. }
        )
    }

    /// A short word for the record: made, measure, exists, not_worth, flag, window, not_first.
    pub fn kind(&self) -> &'static str {
        match self {
            Decision::Make { .. } => "made",
            Decision::Measure { .. } => "measure",
            Decision::BeforeAtomic { .. } => "before_atomic",
            Decision::Exists { .. } => "exists",
            Decision::NotWorth { .. } => "not_worth",
            Decision::Flag(_) => "flag",
            Decision::OutsideWindow => "window",
            Decision::NotFirst => "not_first",
        }
    }

    /// The re-run time since the previous checkpoint, where the policy counted it.
    pub fn saves(&self) -> Option<f64> {
        match self {
            Decision::Make { saves, .. }
            | Decision::Measure { saves }
            | Decision::BeforeAtomic { saves }
            | Decision::Exists { saves }
            | Decision::NotWorth { saves, .. } => Some(*saves),
            _ => None,
        }
    }

    pub fn cost(&self) -> Option<f64> {
        match self {
            Decision::Make { cost, .. } => *cost,
            Decision::NotWorth { cost, .. } => Some(*cost),
            _ => None,
        }
    }

    /// One line for people: why there is, or is not, a checkpoint after the microstep.
    pub fn describe(&self) -> String {
        match self {
            Decision::Make {
                saves,
                cost: Some(c),
            } => format!("made: saves {saves:.3}s of re-run, more than its cost {c:.3}s"),
            Decision::Make { cost: None, .. } => "made: the policy checkpoints it".into(),
            Decision::Measure { .. } => {
                "made: the first checkpoint in this build dir, to measure the driver's cost".into()
            }
            Decision::BeforeAtomic { .. } => {
                "made: the next microstep is atomic, and undoing it applies this checkpoint".into()
            }
            Decision::Exists { .. } => "a valid checkpoint of this ID already existed".into(),
            Decision::NotWorth { saves, cost } => format!(
                "not made: it would save {saves:.3}s of re-run, less than its cost {cost:.3}s (create + apply)"
            ),
            Decision::Flag(flag) => format!("not made: on_checkpoint: {}", flag_name(*flag)),
            Decision::OutsideWindow => "not made: outside the -B/-E window".into(),
            Decision::NotFirst => {
                "not made: --microstep-checkpoints first, and its step has one".into()
            }
        }
    }
}

fn flag_name(f: OnCheckpoint) -> &'static str {
    match f {
        OnCheckpoint::UseCache => "use_cache",
        OnCheckpoint::Disabled => "disabled",
        OnCheckpoint::Redo => "redo",
        OnCheckpoint::Skip => "skip",
        OnCheckpoint::Only => "only",
    }
}

/// Whether a microstep's state may be saved after it runs, by its own `on_checkpoint`.
pub fn allows_checkpoint(flag: OnCheckpoint) -> bool {
    matches!(flag, OnCheckpoint::UseCache | OnCheckpoint::Only)
}

/// Whether a resume from an earlier checkpoint re-runs it: `redo` runs on every resume anyway
/// and `skip` never runs with checkpoints on, so a checkpoint saves neither's time.
pub fn saved_by_checkpoint(flag: OnCheckpoint) -> bool {
    !matches!(flag, OnCheckpoint::Redo | OnCheckpoint::Skip)
}

/// The policy's state along one build: the re-run time accumulated since the previous
/// checkpoint, the driver's costs as measured so far, and for `first` the steps already done.
#[derive(Debug, Clone)]
pub struct Decider {
    pub policy: Policy,
    pub costs: Costs,
    since: f64,
    checkpointed_steps: Vec<(String, String)>,
}

impl Decider {
    /// A build that starts from scratch, or right after applying a checkpoint: either way
    /// nothing before is re-run on a resume from here.
    pub fn new(policy: Policy, costs: Costs) -> Decider {
        Decider {
            policy,
            costs,
            since: 0.0,
            checkpointed_steps: Vec::new(),
        }
    }

    /// The re-run time counted since the previous checkpoint.
    pub fn since(&self) -> f64 {
        self.since
    }

    /// Decides for the microstep that just ran. A `Make` or `Measure` is only a wish: call
    /// [`Decider::made`] once the checkpoint exists.
    pub fn after(&mut self, f: &Facts<'_>) -> Decision {
        if saved_by_checkpoint(f.on_checkpoint) {
            self.since += f.duration.unwrap_or(0.0).max(0.0);
        }
        let saves = self.since;
        if !allows_checkpoint(f.on_checkpoint) {
            return Decision::Flag(f.on_checkpoint);
        }
        if !f.in_window {
            return Decision::OutsideWindow;
        }
        let key = (f.step.0.to_string(), f.step.1.to_string());
        if self.policy == Policy::First && self.checkpointed_steps.contains(&key) {
            return Decision::NotFirst;
        }
        if self.policy == Policy::Auto && f.exists {
            self.since = 0.0;
            return Decision::Exists { saves };
        }
        match self.policy {
            Policy::All | Policy::First => Decision::Make { saves, cost: None },
            Policy::Auto if f.before_atomic => Decision::BeforeAtomic { saves },
            Policy::Auto => match self.costs.total() {
                None => Decision::Measure { saves },
                Some(cost) if saves > cost => Decision::Make {
                    saves,
                    cost: Some(cost),
                },
                Some(cost) => Decision::NotWorth { saves, cost },
            },
        }
    }

    /// The checkpoint after the microstep of `step` was created in `create_secs`.
    pub fn made(&mut self, step: (&str, &str), create_secs: f64) {
        self.since = 0.0;
        self.costs.create = Some(create_secs);
        let key = (step.0.to_string(), step.1.to_string());
        if !self.checkpointed_steps.contains(&key) {
            self.checkpointed_steps.push(key);
        }
    }
}

/// How long a microstep took when it last completed in this build dir.
pub struct Recorded<'a> {
    pub id: &'a str,
    pub slug: &'a str,
    pub seconds: f64,
}

/// The latest decision a build recorded for a checkpoint ID.
pub struct Decided<'a> {
    pub id: &'a str,
    pub policy: &'a str,
    /// [`Decision::describe`]'s sentence.
    pub detail: &'a str,
}

/// What `plan --explain` adds about the policy, once a `first` or `auto` build recorded its
/// decisions: the driver's costs, how long what a build with `-c` runs (`actions`) took in
/// earlier runs, and for each microstep of the plan that a build decided about, why it got a
/// checkpoint or not. Nothing when no decision was recorded.
pub fn explain(
    plan: &Plan,
    actions: &[Action],
    durations: &[Recorded<'_>],
    decided: &[Decided<'_>],
    costs: Costs,
    driver: &str,
) -> Vec<String> {
    let mut lines = Vec::new();
    let mut policy = None;
    for ms in &plan.microsteps {
        if let Some(d) = decided.iter().rev().find(|d| d.id == ms.id) {
            policy.get_or_insert(d.policy);
            lines.push(format!("  {}: {}", ms.slug, d.detail));
        }
    }
    let Some(policy) = policy else {
        return Vec::new();
    };
    let estimate = |ms: &PlannedMicrostep| {
        durations
            .iter()
            .find(|d| d.id == ms.id)
            .or_else(|| durations.iter().find(|d| d.slug == ms.slug))
            .map_or(0.0, |d| d.seconds)
    };
    let rerun = plan
        .microsteps
        .iter()
        .filter(|ms| actions.get(ms.index) == Some(&Action::Run))
        .fold(0.0, |sum, ms| sum + estimate(ms));
    // A negative zero (or a clock's tiny negative duration) would print as "-0.00s".
    let rerun = if rerun > 0.0 { rerun } else { 0.0 };
    let secs = |v: Option<f64>, unknown: &str| {
        v.map(|s| format!("{s:.3}s"))
            .unwrap_or_else(|| unknown.to_string())
    };
    let mut out = vec![
        format!("What it runs took about {rerun:.2}s in earlier runs of this build dir."),
        format!(
            "Checkpoints by policy {policy} in this build dir (driver {driver}: create {}, apply {}):",
            secs(costs.create, "?"),
            secs(costs.apply, "? (taken to equal create)")
        ),
    ];
    out.extend(lines);
    out
}

/// The decisions for a whole plan at once, as a build that measures `facts[i].duration` would
/// make them with create cost staying as measured: for `plan --explain` and tests.
pub fn simulate(policy: Policy, costs: Costs, facts: &[Facts<'_>]) -> Vec<Decision> {
    let mut d = Decider::new(policy, costs);
    facts
        .iter()
        .map(|f| {
            let decision = d.after(f);
            if decision.makes() {
                let create = d.costs.create.unwrap_or(0.0);
                d.made(f.step, create);
            }
            decision
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(secs: f64) -> Facts<'static> {
        Facts {
            on_checkpoint: OnCheckpoint::UseCache,
            in_window: true,
            step: ("s", "t"),
            duration: Some(secs),
            exists: false,
            before_atomic: false,
        }
    }

    fn flagged(secs: f64, flag: OnCheckpoint) -> Facts<'static> {
        Facts {
            on_checkpoint: flag,
            ..ms(secs)
        }
    }

    fn costs(create: f64, apply: f64) -> Costs {
        Costs {
            create: Some(create),
            apply: Some(apply),
        }
    }

    fn made(ds: &[Decision]) -> Vec<usize> {
        ds.iter()
            .enumerate()
            .filter(|(_, d)| d.makes())
            .map(|(i, _)| i)
            .collect()
    }

    #[test]
    fn auto_checkpoints_after_slow_microsteps_not_after_trivial_ones() {
        // Ten trivial microsteps, a slow one, ten trivial, a slow one, five trivial.
        let mut facts: Vec<Facts> = Vec::new();
        facts.extend((0..10).map(|_| ms(0.002)));
        facts.push(ms(3.0));
        facts.extend((0..10).map(|_| ms(0.002)));
        facts.push(ms(2.0));
        facts.extend((0..5).map(|_| ms(0.002)));
        let ds = simulate(Policy::Auto, costs(0.2, 0.2), &facts);
        assert_eq!(made(&ds), vec![10, 21]);
        assert_eq!(
            ds[0],
            Decision::NotWorth {
                saves: 0.002,
                cost: 0.4
            }
        );
        // The slow one saves itself and the trivial ones before it.
        match ds[10] {
            Decision::Make {
                saves,
                cost: Some(c),
            } => {
                assert!((saves - 3.02).abs() < 1e-9, "{saves}");
                assert_eq!(c, 0.4);
            }
            other => panic!("{other:?}"),
        }
        // After a checkpoint, counting starts again.
        assert_eq!(ds[11].saves(), Some(0.002));
    }

    #[test]
    fn trivial_microsteps_add_up_until_they_pay() {
        let facts: Vec<Facts> = (0..10).map(|_| ms(0.1)).collect();
        // Cost 0.25: the third microstep's checkpoint saves 0.3 > 0.25, then again three on.
        let ds = simulate(Policy::Auto, costs(0.15, 0.1), &facts);
        assert_eq!(made(&ds), vec![2, 5, 8]);
    }

    #[test]
    fn equal_saving_and_cost_does_not_pay() {
        let ds = simulate(Policy::Auto, costs(0.5, 0.5), &[ms(1.0), ms(0.0)]);
        assert_eq!(
            ds[0],
            Decision::NotWorth {
                saves: 1.0,
                cost: 1.0
            }
        );
        assert!(!ds[1].makes());
    }

    #[test]
    fn apply_cost_defaults_to_create_cost() {
        let c = Costs {
            create: Some(0.3),
            apply: None,
        };
        assert_eq!(c.total(), Some(0.6));
        let ds = simulate(Policy::Auto, c, &[ms(0.5), ms(0.2)]);
        assert_eq!(made(&ds), vec![1]);
    }

    #[test]
    fn unknown_cost_makes_the_first_checkpoint_to_measure_it() {
        let mut d = Decider::new(Policy::Auto, Costs::default());
        assert_eq!(d.after(&ms(0.001)), Decision::Measure { saves: 0.001 });
        d.made(("s", "t"), 0.5);
        assert_eq!(d.costs.create, Some(0.5));
        // Now it is known: 1.0 total with apply taken as create.
        assert_eq!(
            d.after(&ms(0.4)),
            Decision::NotWorth {
                saves: 0.4,
                cost: 1.0
            }
        );
        assert!(d.after(&ms(0.7)).makes());
    }

    #[test]
    fn a_wish_not_fulfilled_keeps_counting() {
        let mut d = Decider::new(Policy::Auto, costs(0.1, 0.1));
        assert!(d.after(&ms(0.5)).makes());
        // The driver declined (a Kameleon backend not ready): nothing was made.
        assert_eq!(d.after(&ms(0.5)).saves(), Some(1.0));
    }

    #[test]
    fn the_latest_create_time_is_the_cost() {
        let mut d = Decider::new(Policy::Auto, costs(0.1, 0.1));
        assert!(d.after(&ms(1.0)).makes());
        // The rootfs grew: creating took 2 s this time.
        d.made(("s", "t"), 2.0);
        assert_eq!(d.costs.total(), Some(2.1));
        assert!(!d.after(&ms(1.5)).makes());
        assert!(d.after(&ms(1.0)).makes());
    }

    #[test]
    fn on_checkpoint_flags_keep_their_meaning() {
        use OnCheckpoint::*;
        let facts = [
            flagged(5.0, Disabled),
            flagged(5.0, Redo),
            flagged(5.0, Skip),
            flagged(0.0, Only),
        ];
        let ds = simulate(Policy::Auto, costs(0.1, 0.1), &facts);
        assert_eq!(ds[0], Decision::Flag(Disabled));
        assert_eq!(ds[1], Decision::Flag(Redo));
        assert_eq!(ds[2], Decision::Flag(Skip));
        // Redo runs on every resume and skip never runs: only the disabled one's time is saved.
        assert_eq!(
            ds[3],
            Decision::Make {
                saves: 5.0,
                cost: Some(0.2)
            }
        );
        // `all` never overrides them either.
        let ds = simulate(Policy::All, Costs::default(), &facts);
        assert_eq!(made(&ds), vec![3]);
    }

    #[test]
    fn the_window_bounds_every_policy() {
        let mut facts: Vec<Facts> = (0..4).map(|_| ms(10.0)).collect();
        facts[0].in_window = false;
        facts[3].in_window = false;
        for policy in [Policy::All, Policy::First, Policy::Auto] {
            let ds = simulate(policy, costs(0.1, 0.1), &facts);
            assert_eq!(ds[0], Decision::OutsideWindow, "{policy:?}");
            assert_eq!(ds[3], Decision::OutsideWindow, "{policy:?}");
            assert!(ds[1].makes(), "{policy:?}");
        }
        // The time outside the window still counts toward the first checkpoint inside it.
        let ds = simulate(Policy::Auto, costs(0.1, 0.1), &facts);
        assert_eq!(ds[1].saves(), Some(20.0));
    }

    #[test]
    fn first_makes_one_per_step() {
        let mut facts: Vec<Facts> = (0..5).map(|_| ms(0.0)).collect();
        facts[3].step = ("s", "u");
        facts[4].step = ("s", "u");
        let ds = simulate(Policy::First, Costs::default(), &facts);
        assert_eq!(made(&ds), vec![0, 3]);
        assert_eq!(ds[1], Decision::NotFirst);
        assert_eq!(
            made(&simulate(Policy::All, Costs::default(), &facts)).len(),
            5
        );
    }

    #[test]
    fn an_existing_valid_checkpoint_is_kept_and_counting_restarts() {
        let mut facts = vec![ms(5.0), ms(5.0), ms(0.3)];
        facts[1].exists = true;
        let ds = simulate(Policy::Auto, costs(0.1, 0.1), &facts);
        assert!(ds[0].makes());
        assert_eq!(ds[1], Decision::Exists { saves: 5.0 });
        assert_eq!(
            ds[2],
            Decision::Make {
                saves: 0.3,
                cost: Some(0.2)
            }
        );
    }

    #[test]
    fn unknown_or_negative_durations_count_as_nothing() {
        let mut facts = vec![ms(-1.0), ms(0.0)];
        facts[1].duration = None;
        let ds = simulate(Policy::Auto, costs(0.0, 0.0), &facts);
        assert_eq!(
            ds[0],
            Decision::NotWorth {
                saves: 0.0,
                cost: 0.0
            }
        );
        assert_eq!(ds[1].saves(), Some(0.0));
    }

    #[test]
    fn auto_checkpoints_before_an_atomic_microstep_whatever_it_costs() {
        let mut facts = vec![ms(0.001), ms(0.001), ms(0.001)];
        facts[1].before_atomic = true;
        let ds = simulate(Policy::Auto, costs(1.0, 1.0), &facts);
        assert_eq!(made(&ds), vec![1]);
        assert_eq!(ds[1], Decision::BeforeAtomic { saves: 0.002 });
        // Flags and the window still win.
        facts[1].on_checkpoint = OnCheckpoint::Disabled;
        assert!(made(&simulate(Policy::Auto, costs(1.0, 1.0), &facts)).is_empty());
    }

    #[test]
    fn names_round_trip() {
        for n in Policy::NAMES {
            assert_eq!(Policy::parse(n).map(Policy::name), Some(n));
        }
        assert_eq!(Policy::parse("every"), None);
    }

    #[test]
    fn descriptions_say_why() {
        let d = Decision::NotWorth {
            saves: 0.01,
            cost: 0.4,
        };
        assert_eq!(
            d.describe(),
            "not made: it would save 0.010s of re-run, less than its cost 0.400s (create + apply)"
        );
        assert_eq!(
            Decision::Flag(OnCheckpoint::Redo).describe(),
            "not made: on_checkpoint: redo"
        );
    }
}
