//! EncryptedVolumePolicy on the shared engine: StorageClasses and PersistentVolumes.

use super::{PolicyError, PolicyKind, ready, reflect, refs, run};
use crate::api::{EncryptedVolumePolicy, PolicyStatus, ResourceRef, Severity};
use crate::controller::{Context, ControllerConfig};
use crate::policy::units::{UnitPlan, VolumeUnits, volume_plan};
use crate::policy::{resource_ref, selector};
use k8s_openapi::api::core::v1::PersistentVolume;
use k8s_openapi::api::storage::v1::StorageClass;
use kube::Resource;
use kube::runtime::reflector::Store;
use std::future::Future;
use std::sync::Arc;

/// The EncryptedVolumePolicy kind.
pub struct VolumePolicies;

/// The objects an EncryptedVolumePolicy evaluation sees.
#[derive(Clone, Debug, Default)]
pub struct VolumeWorld {
    pub storage_classes: Vec<Arc<StorageClass>>,
    pub persistent_volumes: Vec<Arc<PersistentVolume>>,
}

pub struct VolumeStores {
    storage_classes: Store<StorageClass>,
    persistent_volumes: Store<PersistentVolume>,
}

impl PolicyKind for VolumePolicies {
    type Policy = EncryptedVolumePolicy;
    type World = VolumeWorld;
    type Stores = VolumeStores;
    type Units<'w> = VolumeUnits<'w>;
    const CONTROLLER: &'static str = "encryptedvolumepolicy";

    fn status(policy: &EncryptedVolumePolicy) -> Option<&PolicyStatus> {
        policy.status.as_ref()
    }

    fn fail_on(policy: &EncryptedVolumePolicy) -> Severity {
        policy.spec.fail_on
    }

    fn skipped_rules_pass(policy: &EncryptedVolumePolicy) -> bool {
        policy.spec.skipped_rules_pass
    }

    fn plan<'w>(
        policy: &'w EncryptedVolumePolicy,
        world: &'w VolumeWorld,
        _: &'w ControllerConfig,
    ) -> UnitPlan<VolumeUnits<'w>> {
        volume_plan(policy, &refs(&world.storage_classes), &refs(&world.persistent_volumes))
    }

    async fn snapshot(stores: &VolumeStores) -> Result<VolumeWorld, PolicyError> {
        ready(&stores.storage_classes, "StorageClass").await?;
        ready(&stores.persistent_volumes, "PersistentVolume").await?;
        Ok(VolumeWorld {
            storage_classes: stores.storage_classes.state(),
            persistent_volumes: stores.persistent_volumes.state(),
        })
    }
}

/// Runs the EncryptedVolumePolicy controller until `shutdown` completes: one watch each of
/// StorageClasses and PersistentVolumes, `ctx.config.concurrency` policies evaluated at once.
pub async fn run_volume_policies(ctx: Context, shutdown: impl Future<Output = ()> + Send + Sync + 'static) {
    let (storage_classes, class_changes) = reflect::<StorageClass>(&ctx.client);
    let (persistent_volumes, volume_changes) = reflect::<PersistentVolume>(&ctx.client);
    let stores = VolumeStores { storage_classes, persistent_volumes };
    run::<VolumePolicies>(
        ctx,
        stores,
        move |controller, policies, engine| {
            let (class_policies, class_engine) = (policies.clone(), engine.clone());
            controller
                .watches_stream(class_changes, move |class: StorageClass| {
                    class_engine.affected(&class_policies, &[resource_ref(&class)], |policy| {
                        selector::matches(
                            policy.spec.storage_class_selector.as_ref(),
                            class.metadata.labels.as_ref(),
                        )
                    })
                })
                .watches_stream(volume_changes, move |volume: PersistentVolume| {
                    // A volume concerns the policies that govern its StorageClass.
                    let mut resources = vec![resource_ref(&volume)];
                    if let Some(name) = volume.spec.as_ref().and_then(|s| s.storage_class_name.clone()) {
                        resources.push(ResourceRef {
                            api_version: StorageClass::api_version(&()),
                            kind: StorageClass::kind(&()),
                            namespace: None,
                            name,
                        });
                    }
                    engine.affected(&policies, &resources, |_| false)
                })
        },
        shutdown,
    )
    .await;
}
