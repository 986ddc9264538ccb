fn main() {
    for crd in dpo::api::crds() {
        let _ = crd;
    }
    print!("{}", dpo::api::crds_yaml());
}
