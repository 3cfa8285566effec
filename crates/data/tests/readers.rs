//! Each official layout, built tiny in a temp dir, read back.
use deda_core::ClassId;
use deda_data::*;
use std::fs;
use std::path::Path;

fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, text).unwrap();
}

fn ids(ds: &DataSet) -> Vec<&str> {
    ds.samples.iter().map(|s| s.id.as_str()).collect()
}

fn labels(ds: &DataSet) -> Vec<u32> {
    ds.samples
        .iter()
        .map(|s| s.label.single().unwrap().0)
        .collect()
}

#[test]
fn imagefolder_sorts_classes_filters_extensions_and_hidden_files() {
    let d = tempfile::tempdir().unwrap();
    let r = d.path();
    for f in [
        "zebra/b.JPG",
        "zebra/a.png",
        "ant/x.webp",
        "ant/sub/y.TIFF",
        "ant/.hidden.jpg",
        "ant/notes.txt",
    ] {
        write(r, f, "x");
    }
    write(r, ".git/z.jpg", "x");
    let ds = read_image_folder(r).unwrap();
    assert_eq!(ds.class_names, vec!["ant", "zebra"]);
    assert_eq!(
        ids(&ds),
        vec!["ant/sub/y.TIFF", "ant/x.webp", "zebra/a.png", "zebra/b.JPG"]
    );
    assert_eq!(labels(&ds), vec![0, 0, 1, 1]);
    assert_eq!(ds.samples[2].path, r.join("zebra").join("a.png"));
}

#[test]
fn imagefolder_split_and_empty_class_errors() {
    let d = tempfile::tempdir().unwrap();
    let r = d.path();
    for f in ["train/a/1.jpg", "train/b/2.jpg", "test/b/3.jpg"] {
        write(r, f, "x");
    }
    let s = read_image_folder_split(r).unwrap();
    assert_eq!(s.test.class_names, vec!["a", "b"]);
    assert_eq!(ids(&s.test), vec!["test/b/3.jpg"]);
    assert_eq!(labels(&s.test), vec![1]);
    fs::create_dir_all(r.join("train/c")).unwrap();
    let msg = read_image_folder_split(r).unwrap_err().to_string();
    assert!(msg.contains("\"c\"") && msg.contains("no samples"), "{msg}");
}

fn cub(r: &Path) {
    write(
        r,
        "classes.txt",
        "1 001.Black_footed_Albatross\n2 002.Laysan_Albatross\n",
    );
    write(r, "images.txt", "1 001.Black_footed_Albatross/a.jpg\n2 001.Black_footed_Albatross/b.jpg\n3 002.Laysan_Albatross/c.jpg\n");
    write(r, "image_class_labels.txt", "1 1\n2 1\n3 2\n");
    write(r, "train_test_split.txt", "1 1\n2 0\n3 1\n");
    for f in [
        "001.Black_footed_Albatross/a.jpg",
        "001.Black_footed_Albatross/b.jpg",
        "002.Laysan_Albatross/c.jpg",
    ] {
        write(r, &format!("images/{f}"), "x");
    }
}

#[test]
fn cub_official_split_labels_and_segmentations() {
    let d = tempfile::tempdir().unwrap();
    let r = d.path();
    cub(r);
    write(r, "segmentations/001.Black_footed_Albatross/a.png", "x");
    let s = read_cub(r).unwrap();
    assert_eq!(
        ids(&s.train),
        vec![
            "images/001.Black_footed_Albatross/a.jpg",
            "images/002.Laysan_Albatross/c.jpg"
        ]
    );
    assert_eq!(labels(&s.train), vec![0, 1]);
    assert_eq!(labels(&s.test), vec![0]);
    assert_eq!(s.train.class_names[1], "002.Laysan_Albatross");
    let masks = GroundTruthMasks::cub(r);
    assert_eq!(
        masks.mask_path(&s.train.samples[0]),
        Some(r.join("segmentations/001.Black_footed_Albatross/a.png"))
    );
    assert_eq!(masks.mask_path(&s.train.samples[1]), None);
}

#[test]
fn cub_malformed_line_names_file_and_line() {
    let d = tempfile::tempdir().unwrap();
    let r = d.path();
    cub(r);
    write(r, "image_class_labels.txt", "1 1\n2 one\n3 2\n");
    let msg = read_cub(r).unwrap_err().to_string();
    assert!(msg.contains("image_class_labels.txt:2:"), "{msg}");
    write(r, "image_class_labels.txt", "1 1\n2 1\n3 7\n");
    let msg = read_cub(r).unwrap_err().to_string();
    assert!(
        msg.contains("image_class_labels.txt:3:") && msg.contains("class id 7"),
        "{msg}"
    );
}

#[test]
fn cub_missing_image_is_named() {
    let d = tempfile::tempdir().unwrap();
    let r = d.path();
    cub(r);
    fs::remove_file(r.join("images/002.Laysan_Albatross/c.jpg")).unwrap();
    let msg = read_cub(r).unwrap_err().to_string();
    assert!(msg.contains("c.jpg") && msg.contains("missing"), "{msg}");
}

#[test]
fn cub_empty_split_is_an_error_naming_it() {
    let d = tempfile::tempdir().unwrap();
    let r = d.path();
    cub(r);
    write(r, "train_test_split.txt", "1 1\n2 1\n3 1\n");
    let msg = read_cub(r).unwrap_err().to_string();
    assert!(msg.contains("cub/test") && msg.contains("empty"), "{msg}");
}

fn aircraft(r: &Path) {
    write(r, "data/variants.txt", "707-320\nA300B4\nCessna 172\n");
    write(
        r,
        "data/images_variant_trainval.txt",
        "0000001 Cessna 172\n0000002 A300B4\n0000003 Cessna 172\n0000004 707-320\n",
    );
    write(
        r,
        "data/images_variant_train.txt",
        "0000001 Cessna 172\n0000004 707-320\n",
    );
    write(
        r,
        "data/images_variant_test.txt",
        "0000005 A300B4\n0000006 707-320\n",
    );
    for i in 1..=6 {
        write(r, &format!("data/images/000000{i}.jpg"), "x");
    }
}

#[test]
fn aircraft_class_order_is_first_appearance_in_trainval() {
    let d = tempfile::tempdir().unwrap();
    let r = d.path();
    aircraft(r);
    let s = read_aircraft(r, AircraftTrain::Trainval).unwrap();
    assert_eq!(s.train.class_names, vec!["Cessna 172", "A300B4", "707-320"]);
    assert_eq!(labels(&s.train), vec![0, 1, 0, 2]);
    assert_eq!(labels(&s.test), vec![1, 2]);
    assert_eq!(
        ids(&s.test),
        vec!["data/images/0000005.jpg", "data/images/0000006.jpg"]
    );
    let t = read_aircraft(r, AircraftTrain::Train).unwrap();
    assert_eq!(t.train.len(), 2);
    assert_eq!(t.train.class_names, s.train.class_names);
    assert_eq!(labels(&t.train), vec![0, 2]);
}

#[test]
fn aircraft_unknown_variant_names_file_and_line() {
    let d = tempfile::tempdir().unwrap();
    let r = d.path();
    aircraft(r);
    write(
        r,
        "data/images_variant_test.txt",
        "0000005 A300B4\n0000006 Boeing 999\n",
    );
    let msg = read_aircraft(r, AircraftTrain::Trainval)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("images_variant_test.txt:2:") && msg.contains("Boeing 999"),
        "{msg}"
    );
    write(r, "data/images_variant_test.txt", "0000005\n");
    let msg = read_aircraft(r, AircraftTrain::Trainval)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("images_variant_test.txt:1:"), "{msg}");
}

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

#[test]
fn cars_devkit_mat_files_are_read() {
    let d = tempfile::tempdir().unwrap();
    let r = d.path();
    fs::create_dir_all(r.join("devkit")).unwrap();
    for f in ["cars_meta.mat", "cars_train_annos.mat"] {
        fs::copy(fixture(f), r.join("devkit").join(f)).unwrap();
    }
    fs::copy(
        fixture("cars_test_annos_withlabels.mat"),
        r.join("cars_test_annos_withlabels.mat"),
    )
    .unwrap();
    for i in 1..=4 {
        write(r, &format!("cars_train/0000{i}.jpg"), "x");
    }
    for i in 1..=3 {
        write(r, &format!("cars_test/0000{i}.jpg"), "x");
    }
    let s = read_cars(r).unwrap();
    assert_eq!(
        s.train.class_names,
        vec![
            "AM General Hummer SUV 2000",
            "Acura RL Sedan 2012",
            "Audi TT RS Coupe 2012"
        ]
    );
    assert_eq!(labels(&s.train), vec![0, 1, 2, 0]);
    assert_eq!(labels(&s.test), vec![2, 1, 0]);
    assert_eq!(ids(&s.test)[0], "cars_test/00001.jpg");
    let annos = cars::read_cars_annotations(&r.join("devkit/cars_train_annos.mat")).unwrap();
    assert_eq!(
        annos[3].bbox,
        deda_core::BBox {
            x: 620,
            y: 392,
            w: 864,
            h: 704
        }
    );
    fs::remove_file(r.join("cars_test/00002.jpg")).unwrap();
    let msg = read_cars(r).unwrap_err().to_string();
    assert!(msg.contains("00002.jpg"), "{msg}");
}

#[test]
fn corrupt_mat_file_is_named() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("bad.mat");
    let mut bytes = fs::read(fixture("cars_train_annos.mat")).unwrap();
    bytes.truncate(200);
    fs::write(&p, bytes).unwrap();
    let msg = cars::read_cars_annotations(&p).unwrap_err().to_string();
    assert!(msg.contains("bad.mat"), "{msg}");
}

fn voc_xml(names: &[(&str, u8)]) -> String {
    let objs: String = names
        .iter()
        .map(|(n, d)| format!("<object><name>{n}</name><difficult>{d}</difficult></object>"))
        .collect();
    format!("<annotation><filename>x.jpg</filename>{objs}</annotation>")
}

#[test]
fn voc_multi_labels_include_difficult_objects() {
    let d = tempfile::tempdir().unwrap();
    let r = d.path();
    write(r, "ImageSets/Main/trainval.txt", "000005\n000007\n");
    write(r, "ImageSets/Main/test.txt", "000001\n");
    write(
        r,
        "Annotations/000005.xml",
        &voc_xml(&[("person", 0), ("dog", 0), ("person", 0)]),
    );
    write(r, "Annotations/000007.xml", &voc_xml(&[("tvmonitor", 1)]));
    write(r, "Annotations/000001.xml", &voc_xml(&[("aeroplane", 0)]));
    for i in ["000005", "000007", "000001"] {
        write(r, &format!("JPEGImages/{i}.jpg"), "x");
    }
    let s = read_voc2007(r).unwrap();
    assert_eq!(s.train.num_classes(), 20);
    assert_eq!(
        s.train.samples[0].label,
        Label::Multi(vec![ClassId(11), ClassId(14)])
    );
    assert_eq!(s.train.samples[1].label, Label::Multi(vec![ClassId(19)]));
    assert_eq!(s.train.samples[0].label.target(20).iter().sum::<f32>(), 2.0);
    write(r, "Annotations/000001.xml", &voc_xml(&[("spaceship", 0)]));
    let msg = read_voc2007(r).unwrap_err().to_string();
    assert!(
        msg.contains("000001.xml") && msg.contains("spaceship"),
        "{msg}"
    );
}

fn waterbirds(r: &Path) {
    let rows = [
        "1,001.Black_footed_Albatross/a.jpg,1,0,1,/o/ocean/1.jpg",
        "2,001.Black_footed_Albatross/b.jpg,1,2,0,/b/bamboo_forest/2.jpg",
        "3,017.Cardinal/c.jpg,0,0,0,/b/bamboo_forest/3.jpg",
        "4,017.Cardinal/d.jpg,0,1,1,/o/ocean/4.jpg",
        "5,017.Cardinal/e.jpg,0,2,1,/o/ocean/5.jpg",
    ];
    write(
        r,
        "metadata.csv",
        &format!(
            "img_id,img_filename,y,split,place,place_filename\n{}\n",
            rows.join("\n")
        ),
    );
    for f in [
        "001.Black_footed_Albatross/a.jpg",
        "001.Black_footed_Albatross/b.jpg",
        "017.Cardinal/c.jpg",
        "017.Cardinal/d.jpg",
        "017.Cardinal/e.jpg",
    ] {
        write(r, f, "x");
    }
}

#[test]
fn waterbirds_binary_and_species_modes_and_groups() {
    let d = tempfile::tempdir().unwrap();
    let r = d.path();
    waterbirds(r);
    let all = read_waterbirds_all(r, WaterbirdsLabels::Binary).unwrap();
    assert_eq!(all.train.class_names, vec!["landbird", "waterbird"]);
    assert_eq!(labels(&all.train), vec![1, 0]);
    let groups: Vec<_> = all.train.samples.iter().map(|s| s.group.unwrap()).collect();
    assert_eq!(groups, vec![3, 0]);
    assert_eq!(all.val.as_ref().unwrap().len(), 1);
    assert_eq!(all.test.samples[1].group, Some(1));
    assert_eq!(all.test.group_names[1], "landbird_water");
    let sp = read_waterbirds(r, WaterbirdsLabels::Species).unwrap();
    assert_eq!(sp.train.num_classes(), 17);
    assert_eq!(labels(&sp.train), vec![0, 16]);
    assert_eq!(sp.train.class_names[16], "017.Cardinal");
    assert_eq!(sp.train.class_names[5], "class_006");
    assert_eq!(sp.test.samples[0].group, Some(2));
}

#[test]
fn waterbirds_bad_split_names_line() {
    let d = tempfile::tempdir().unwrap();
    let r = d.path();
    waterbirds(r);
    let text = fs::read_to_string(r.join("metadata.csv"))
        .unwrap()
        .replace("3,017.Cardinal/c.jpg,0,0,", "3,017.Cardinal/c.jpg,0,7,");
    write(r, "metadata.csv", &text);
    let msg = read_waterbirds(r, WaterbirdsLabels::Binary)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("metadata.csv:4:") && msg.contains("split"),
        "{msg}"
    );
}

#[test]
fn k_shot_is_seeded_per_class_and_reports_short_classes() {
    let d = tempfile::tempdir().unwrap();
    let r = d.path();
    for c in ["a", "b"] {
        for i in 0..6 {
            write(r, &format!("{c}/{i}.jpg"), "x");
        }
    }
    write(r, "c/0.jpg", "x");
    let ds = read_image_folder(r).unwrap();
    let msg = k_shot(&ds, 3, 0).unwrap_err().to_string();
    assert!(msg.contains("\"c\" (1)") && !msg.contains("\"a\""), "{msg}");
    let ks = KShot {
        k: 3,
        seed: 0,
        allow_fewer: true,
    };
    let a = ks.apply(&ds).unwrap();
    assert_eq!(a.class_counts(), vec![3, 3, 1]);
    assert_eq!(a, ks.apply(&ds).unwrap());
    let mut reversed = ds.clone();
    reversed.samples.reverse();
    assert_eq!(ids(&ks.apply(&reversed).unwrap()), ids(&a));
    let other: Vec<Vec<String>> = (1..6)
        .map(|seed| {
            ids(&KShot { seed, ..ks }.apply(&ds).unwrap())
                .iter()
                .map(|s| s.to_string())
                .collect()
        })
        .collect();
    assert!(
        other
            .iter()
            .any(|o| o.iter().map(String::as_str).collect::<Vec<_>>() != ids(&a)),
        "seed has no effect"
    );
}
