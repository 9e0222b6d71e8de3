//! Checkpoints of one build: which exist (the driver's `list`, less any whose creation never
//! finished), which one a build resumes from, and creating and applying them with the state
//! database keeping what the driver cannot know (slug, parent, times, manifest).

pub mod remote;
pub mod size;

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::diag::error::{Diagnostic, Error, Result};
use crate::driver::{BoundDriver, Driver, Op};
use crate::exec::contexts::Contexts;
use crate::output::time::now;
use crate::output::{Event, Output};
use crate::plan::id::short;
use crate::plan::schedule::{checkpointable, resume_point};
use crate::plan::{Plan, PlannedMicrostep};
use crate::state::{CheckpointRecord, StateDb};

pub fn recipe_dirs(plan: &Plan) -> Vec<PathBuf> {
    std::iter::once(&plan.recipe.path)
        .chain(&plan.recipe.parents)
        .map(|p| p.parent().unwrap_or(Path::new(".")).to_path_buf())
        .collect()
}

/// The recipe's driver, bound to its globals; None when the recipe names none.
pub fn driver_of(plan: &Plan) -> Result<Option<BoundDriver>> {
    let Some(spec) = &plan.recipe.checkpoint else {
        return Ok(None);
    };
    // `checkpoint: "{{driver}}"` lets `-g driver=btrfs` choose the driver per build.
    let name =
        crate::vars::Resolver::new(&plan.global_scope).render(spec, crate::vars::Mode::Run)?;
    let spec = crate::recipe::Text::new(name, spec.span.clone());
    let dirs = recipe_dirs(plan);
    let path = crate::driver::find(&spec, &dirs, &plan.recipe.step_dirs)?;
    // A driver of a Kameleon tree (next to the recipe, or in its `steps/checkpoints/`) is
    // Kameleon's; any other is read by its own markers, and the built-in ones are native.
    let own = dirs
        .iter()
        .chain(&plan.recipe.step_dirs)
        .any(|d| path.starts_with(d));
    let kameleon = own && plan.recipe.dialect == crate::recipe::dialect::Dialect::Kameleon;
    let driver = Driver::load_with(
        &path,
        kameleon.then_some(plan.recipe.dialect),
        &plan.recipe.aliases,
    )?;
    let bound = BoundDriver::bind(driver, &plan.global_scope);
    bound.validate()?;
    Ok(Some(bound))
}

pub fn require_driver(plan: &Plan) -> Result<BoundDriver> {
    driver_of(plan)?.ok_or_else(|| {
        Error::checkpoint(
            Diagnostic::new(format!(
                "recipe {} names no checkpoint driver",
                plan.recipe.path.display()
            ))
            .hint("add `checkpoint: copy` (or hardlink, reflink, ...) to the recipe"),
        )
    })
}

pub struct Store<'a> {
    pub driver: BoundDriver,
    pub db: &'a StateDb,
    /// Full IDs the driver lists whose creation finished.
    pub existing: Vec<String>,
}

impl<'a> Store<'a> {
    /// Lists what exists, first deleting any checkpoint whose creation was interrupted: such a
    /// checkpoint is never applied. Only a holder of the build dir's lock may delete; a mere
    /// reader (`tidy: false`) leaves them alone, since one may be a running build's, half made.
    pub fn open(
        driver: BoundDriver,
        db: &'a StateDb,
        contexts: &mut Contexts,
        output: &Output,
        tidy: bool,
    ) -> Result<Store<'a>> {
        if let Err(e) = driver.enabled(contexts) {
            if !driver.driver.kameleon {
                return Err(e);
            }
            // Kameleon's `enabled?` says whether checkpoints can be listed yet (the disk
            // image may not exist before bootstrap): not yet means none exist.
            output.message(format!(
                " --> Checkpoint driver `{}` is not ready yet: no checkpoint to apply",
                driver.name()
            ));
            return Ok(Store {
                driver,
                db,
                existing: Vec::new(),
            });
        }
        // A driver without `delete` cannot remove a half-made checkpoint: its record stays
        // unfinished, and the ID is left out of what exists until a create of it succeeds.
        let mut unfinished = Vec::new();
        for rec in db.unfinished_checkpoints()? {
            if !tidy {
                unfinished.push(rec.id);
                continue;
            }
            if driver.driver.has(Op::Delete) {
                output.warning(format!(
                    "deleting checkpoint {} ({}): its creation did not finish",
                    short(&rec.id),
                    rec.slug
                ));
                driver.run(contexts, Op::Delete, &rec.id)?;
                db.forget_checkpoint(&rec.id)?;
            } else {
                output.warning(format!(
                    "ignoring checkpoint {} ({}): its creation did not finish, and driver `{}` has no `delete`",
                    short(&rec.id),
                    rec.slug,
                    driver.name()
                ));
                unfinished.push(rec.id);
            }
        }
        let mut existing: Vec<String> = driver.list(contexts)?;
        if driver.driver.kameleon {
            // A Kameleon driver names checkpoints by 12-character IDs, as Kameleon's do: the
            // state database knows the full ID of each one this build dir made.
            let records = db.checkpoints()?;
            for id in &mut existing {
                if let Some(rec) = records.iter().find(|r| r.id.starts_with(id.as_str())) {
                    *id = rec.id.clone();
                }
            }
        }
        existing.retain(|id| !unfinished.contains(id));
        Ok(Store {
            driver,
            db,
            existing,
        })
    }

    pub fn exists(&self, id: &str) -> bool {
        self.existing.iter().any(|e| e == id)
    }

    /// The newest checkpoint still valid for this plan: the latest microstep, in recipe order,
    /// whose ID the driver holds.
    pub fn newest_valid(&self, plan: &Plan) -> Option<usize> {
        resume_point(plan, |id| self.exists(id))
    }

    /// Resolves `-F` among the checkpoints the driver holds.
    pub fn resolve(&self, plan: &Plan, wanted: &str) -> Result<usize> {
        crate::plan::schedule::from_checkpoint(plan, &self.existing, wanted)
    }

    pub fn apply(
        &self,
        contexts: &mut Contexts,
        ms: &PlannedMicrostep,
        output: &Output,
    ) -> Result<()> {
        output.emit(Event::CheckpointApplyStart {
            slug: ms.slug.clone(),
            id: ms.id.clone(),
        });
        let (at, started) = (now(), Instant::now());
        self.driver.run(contexts, Op::Apply, &ms.id)?;
        let duration = started.elapsed().as_secs_f64();
        self.db
            .record_checkpoint_op("apply", &ms.id, &ms.slug, at, duration, None)?;
        self.db.checkpoint_applied(&ms.id, duration)?;
        output.emit(Event::CheckpointApplied {
            slug: ms.slug.clone(),
            id: ms.id.clone(),
            duration,
        });
        // The shells may hold state from before the apply (a cwd, a mount): start them afresh.
        contexts.stop_all();
        Ok(())
    }

    /// Creates the checkpoint after `ms`, which saves `saves` seconds of re-run, and says how
    /// long creating it took (None when a Kameleon backend declined). The database marks it
    /// unfinished first, so a crash mid-create leaves a record that the next start cleans up.
    pub fn create(
        &mut self,
        contexts: &mut Contexts,
        plan: &Plan,
        ms: &PlannedMicrostep,
        output: &Output,
        saves: Option<f64>,
    ) -> Result<Option<f64>> {
        let (at, started) = (now(), Instant::now());
        if self.driver.driver.kameleon && self.driver.enabled(contexts).is_err() {
            output
                .message(" --> Do not create a checkpoint for this microstep: disabled in backend");
            return Ok(None);
        }
        if self.exists(&ms.id) && self.driver.driver.has(Op::Delete) {
            self.driver.run(contexts, Op::Delete, &ms.id)?;
        }
        let parent = plan.microsteps[..ms.index]
            .iter()
            .rev()
            .find(|m| checkpointable(m) && m.on_checkpoint.advances_chain())
            .map(|m| m.id.clone());
        self.db.checkpoint_creating(&CheckpointRecord {
            id: ms.id.clone(),
            slug: ms.slug.clone(),
            parent,
            driver: self.driver.name().to_string(),
            created_at: now(),
            duration: None,
            manifest: serde_json::to_string(&ms.manifest)
                .map_err(|e| Error::Other(e.to_string()))?,
            ready: false,
        })?;
        output.emit(Event::CheckpointCreateStart {
            slug: ms.slug.clone(),
            id: ms.id.clone(),
        });
        self.driver.run(contexts, Op::Create, &ms.id)?;
        let duration = started.elapsed().as_secs_f64();
        self.db.checkpoint_ready(&ms.id, duration)?;
        let size = self.size(contexts, &ms.id);
        self.db
            .record_checkpoint_op("create", &ms.id, &ms.slug, at, duration, size)?;
        self.db.checkpoint_made(&ms.id, size, saves)?;
        if !self.exists(&ms.id) {
            self.existing.push(ms.id.clone());
        }
        output.emit(Event::CheckpointCreated {
            slug: ms.slug.clone(),
            id: ms.id.clone(),
            duration,
            size: size.and_then(|s| u64::try_from(s).ok()),
        });
        Ok(Some(duration))
    }

    /// A checkpoint's size in bytes: the driver's `size` operation, or else what is allocated
    /// under `{{store}}/<id>`; None when neither tells (a failing `size` is not worth failing
    /// the build for).
    pub fn size(&self, contexts: &mut Contexts, id: &str) -> Option<i64> {
        let bytes = if self.driver.driver.has(Op::Size) {
            self.driver
                .capture(contexts, Op::Size, id)
                .ok()
                .and_then(|out| crate::store::size::parse_reported(&out))
        } else {
            let store = self.driver.variable("store")?;
            crate::store::size::allocated(&Path::new(&store).join(id))
        };
        bytes.map(|b| i64::try_from(b).unwrap_or(i64::MAX))
    }

    /// What the driver costs in this build dir, as measured so far.
    pub fn costs(&self) -> Result<crate::plan::policy::Costs> {
        let name = self.driver.name();
        Ok(crate::plan::policy::Costs {
            create: self.db.latest_create_cost(name)?,
            apply: self.db.latest_apply_cost(name)?,
        })
    }
}

/// One row of a checkpoint listing.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Listed {
    pub id: String,
    pub slug: String,
    pub created_at: Option<f64>,
    /// Create time, in seconds.
    pub duration: Option<f64>,
    /// Bytes, when known.
    pub size: Option<i64>,
    /// Seconds of re-run it saved when it was made.
    pub saves: Option<f64>,
    /// The latest apply's seconds.
    pub apply: Option<f64>,
    pub valid: bool,
    /// The state database of this build dir records making it.
    pub made_here: bool,
}

/// Every checkpoint the driver lists, valid ones in recipe order, then stale ones.
pub fn listing(plan: &Plan, existing: &[String], db: &StateDb) -> Result<Vec<Listed>> {
    let records = db.checkpoints()?;
    let costs = db.checkpoint_costs()?;
    let mut rows: Vec<(usize, Listed)> = Vec::new();
    for id in existing {
        let rec = records.iter().find(|r| &r.id == id);
        let in_plan = plan.microsteps.iter().find(|ms| &ms.id == id);
        let cost = costs.iter().find(|c| &c.id == id);
        rows.push((
            in_plan.map_or(usize::MAX, |m| m.index),
            Listed {
                id: id.clone(),
                slug: in_plan
                    .map(|m| m.slug.clone())
                    .or_else(|| rec.map(|r| r.slug.clone()))
                    .unwrap_or_else(|| "?".into()),
                created_at: rec.map(|r| r.created_at),
                duration: rec.and_then(|r| r.duration),
                size: cost.and_then(|c| c.size),
                saves: cost.and_then(|c| c.saves),
                apply: cost.and_then(|c| c.apply_duration),
                valid: in_plan.is_some(),
                made_here: rec.is_some_and(|r| r.ready),
            },
        ));
    }
    rows.sort_by(|a, b| {
        a.0.cmp(&b.0).then(
            a.1.created_at
                .partial_cmp(&b.1.created_at)
                .unwrap_or(std::cmp::Ordering::Equal),
        )
    });
    Ok(rows.into_iter().map(|(_, l)| l).collect())
}
