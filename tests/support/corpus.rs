//! The generated corpus `dpo check` is measured on: many documents of the kinds it judges, in
//! the shapes real repositories have.

use std::fmt::Write;

const INGRESSES_PER_GROUP: usize = 20;

fn storage_class(i: usize, out: &mut String) {
    let encrypted = if i.is_multiple_of(3) { "\"false\"" } else { "\"true\"" };
    write!(
        out,
        "---\napiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata:\n  name: sc-{i}\n  labels:\n    tier: prod\nprovisioner: ebs.csi.aws.com\nparameters:\n  type: gp3\n  encrypted: {encrypted}\n  kmsKeyId: arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-{i:012}\n"
    )
    .unwrap();
}

fn ingress(i: usize, out: &mut String) {
    let group = i / INGRESSES_PER_GROUP;
    let ports = if i.is_multiple_of(4) { r#"[{"HTTP": 80}, {"HTTPS": 443}]"# } else { r#"[{"HTTPS": 443}]"# };
    write!(
        out,
        "---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: app-{i}\n  namespace: team-{group}\n  annotations:\n    alb.ingress.kubernetes.io/group.name: group-{group}\n    alb.ingress.kubernetes.io/group.order: \"{order}\"\n    alb.ingress.kubernetes.io/listen-ports: '{ports}'\n    alb.ingress.kubernetes.io/certificate-arn: arn:aws:acm:us-east-1:111122223333:certificate/{i:08}-2222-3333-4444-555555555555\n    alb.ingress.kubernetes.io/ssl-policy: ELBSecurityPolicy-TLS13-1-2-2021-06\nspec:\n  ingressClassName: alb\n  rules:\n    - host: app-{i}.example.com\n      http:\n        paths:\n          - path: /\n            pathType: Prefix\n            backend:\n              service:\n                name: app-{i}\n                port:\n                  number: 80\n",
        order = i % INGRESSES_PER_GROUP
    )
    .unwrap();
}

fn service(i: usize, out: &mut String) {
    write!(
        out,
        "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: nlb-{i}\n  namespace: team-{i}\n  annotations:\n    service.beta.kubernetes.io/aws-load-balancer-type: external\n    service.beta.kubernetes.io/aws-load-balancer-ssl-cert: arn:aws:acm:us-east-1:111122223333:certificate/{i:08}-aaaa-bbbb-cccc-dddddddddddd\n    service.beta.kubernetes.io/aws-load-balancer-ssl-ports: \"443\"\nspec:\n  type: LoadBalancer\n  ports:\n    - name: https\n      port: 443\n      targetPort: 8443\n"
    )
    .unwrap();
}

/// Objects `range` of the corpus: 40% Ingresses (in IngressGroups of 20 consecutive objects),
/// 30% StorageClasses (a third unencrypted), 30% NLB Services, interleaved as a real repository
/// would be.
pub fn manifests(range: std::ops::Range<usize>) -> String {
    let mut text = String::with_capacity(range.len() * 700);
    for i in range {
        match i % 10 {
            0..=3 => ingress(i, &mut text),
            4..=6 => storage_class(i, &mut text),
            _ => service(i, &mut text),
        }
    }
    text
}
