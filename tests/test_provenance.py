import dataclasses
import json
import logging

import pytest
from conftest import FORMAT_LINES, ScriptedBackend, build_tiny_lm, make_dataset
from datasets import Value
from datasets.fingerprint import Hasher
from transformers import BertConfig

from gpt3mix_hf import (
    GPT3MixAugmenter,
    GPT3MixConfig,
    SamplingConfig,
    TaskSpec,
    TransformersBackend,
    make_augmenter,
    regenerate,
)
from gpt3mix_hf.augment_run import DEFAULT_MAP_BATCH_SIZE, AugmentationReport
from gpt3mix_hf.backends.local.machine import machine_kind
from gpt3mix_hf.data import class_balanced_sample, load_benchmark
from gpt3mix_hf.hub.cards import build_dataset_card, model_card_from_folder
from gpt3mix_hf.provenance import CONFIG_NAME, DataSource, as_config, check_no_secrets, dataset_sha256


def _sst2_sample(data_dir, per_class=2, seed=0):
    return class_balanced_sample(load_benchmark("sst2", "train", data_dir=data_dir), per_class=per_class, seed=seed)


def _toy():
    return make_dataset(["a fine film", "a dull film"], [1, 0], ["negative", "positive"])


def _data_section(data_dir, per_class=2, seed=0):
    return {"dataset": "sst2", "data_dir": str(data_dir), "split": "train", "sample_per_class": per_class,
            "sample_seed": seed}


def test_config_holds_everything_needed_and_round_trips(tmp_path, toy_sentiment):
    augmenter = GPT3MixAugmenter(ScriptedBackend(), toy_sentiment, TaskSpec.from_preset("sst2"), ratio=2, seed=7)
    synthetic = augmenter.augment(batch_size=4)
    config = GPT3MixConfig.from_augmenter(augmenter, toy_sentiment, data={"dataset": "toy.jsonl"}, map_batch_size=4)

    # Each of the augmenter's settings is in the file once, typed.
    assert config.augmenter == augmenter.config and config.backend == augmenter.backend.identity
    assert GPT3MixConfig.from_dict(json.loads(json.dumps(config.to_dict()))).augmenter == augmenter.config
    assert config.task.spec == augmenter.spec and config.sampling == augmenter.sampling
    assert config.data.dataset == "toy.jsonl"
    assert config.data.num_rows == len(toy_sentiment)
    assert config.data.sha256 == dataset_sha256(toy_sentiment)
    assert config.run.map_batch_size == 4
    assert config.report.rows_written == len(synthetic)
    assert config.report.parse_failures == augmenter.report.parse_failures
    assert config.versions["gpt3mix_hf"] and config.versions["transformers"]

    path = config.save_pretrained(tmp_path)
    assert path == tmp_path / CONFIG_NAME
    loaded = GPT3MixConfig.from_pretrained(tmp_path)
    assert loaded == config and isinstance(loaded.task.template, type(augmenter.template))
    assert json.loads(path.read_text()) == json.loads(json.dumps(config.to_dict()))
    assert [p.name for p in tmp_path.iterdir()] == [CONFIG_NAME]  # written atomically: no staging file left


def test_regenerates_a_byte_identical_dataset_with_the_local_backend(tmp_path, format_lm_dir, data_dir):
    train = _sst2_sample(data_dir)
    backend = TransformersBackend.from_pretrained(str(format_lm_dir), batch_size=4, dtype="float32")
    augmenter = GPT3MixAugmenter(
        backend, train, TaskSpec.from_preset("sst2"), ratio=1.5, seed=11, sampling=SamplingConfig(max_new_tokens=12),
        max_attempts=2,
    )
    first = augmenter.augment(batch_size=4)
    assert len(first) > 0, "the format-trained tiny LM should write parseable rows"
    assert all(abs(sum(row) - 1) < 1e-5 for row in first["soft_labels"])
    config = GPT3MixConfig.from_augmenter(augmenter, train, data=_data_section(data_dir), map_batch_size=4)
    config.save_pretrained(tmp_path)

    # A fresh process would do exactly this: read the file, load the data and the model it names, run.
    second = regenerate(tmp_path / CONFIG_NAME)

    first.to_parquet(tmp_path / "first.parquet")
    second.to_parquet(tmp_path / "second.parquet")
    assert (tmp_path / "first.parquet").read_bytes() == (tmp_path / "second.parquet").read_bytes()
    assert first.features == second.features


def test_a_different_seed_gives_different_rows(format_lm_dir, data_dir):
    # Guards the test above: the regenerated rows are equal because the settings are, not by accident.
    train = _sst2_sample(data_dir)
    backend = TransformersBackend.from_pretrained(str(format_lm_dir), batch_size=4, dtype="float32")
    settings = {"sampling": SamplingConfig(max_new_tokens=12), "max_attempts": 1}
    augmenter = GPT3MixAugmenter(backend, train, TaskSpec.from_preset("sst2"), seed=1, **settings)
    config = GPT3MixConfig.from_augmenter(augmenter, train)
    config.augmenter = dataclasses.replace(config.augmenter, seed=2)
    again = make_augmenter(config, dataset=train, backend=backend)
    assert again.config.seed == 2 and again.sampling == augmenter.sampling
    a = train.map(augmenter, batched=True, with_indices=True, remove_columns=train.column_names, desc="seed 1")
    b = train.map(again, batched=True, with_indices=True, remove_columns=train.column_names, desc="seed 2")

    def everything_written(rows):
        return rows["generation"], [[attempt["generation"] for attempt in row] for row in rows["failed_attempts"]]

    assert everything_written(a) != everything_written(b)


def test_source_rows_are_loaded_and_checked(data_dir):
    train = _sst2_sample(data_dir, per_class=2, seed=5)
    data = DataSource(**_data_section(data_dir, per_class=2, seed=5), sha256=dataset_sha256(train))
    assert data.load().to_list() == train.to_list()

    config = GPT3MixConfig.from_augmenter(GPT3MixAugmenter(ScriptedBackend(), train), data=data)
    config.data.sample_seed = 6
    with pytest.raises(ValueError, match="differ from those the dataset was made from"):
        make_augmenter(config, backend=ScriptedBackend())


def test_errors_say_what_to_do(tmp_path, toy_sentiment):
    augmenter = GPT3MixAugmenter(ScriptedBackend(), toy_sentiment)
    config = GPT3MixConfig.from_augmenter(augmenter)
    with pytest.raises(ValueError, match="backend="):
        make_augmenter(config, dataset=toy_sentiment)
    with pytest.raises(ValueError, match="pass the rows yourself"):
        make_augmenter(config, backend=ScriptedBackend())
    relabelled = make_dataset(["a", "b"], [0, 1], ["bad", "good"])
    with pytest.raises(ValueError, match="label_names"):
        make_augmenter(config, dataset=relabelled, backend=ScriptedBackend())
    plain = toy_sentiment.cast_column("label", Value("int64"))  # as load_dataset("json") gives labels
    with pytest.raises(ValueError, match="ClassLabel"):
        make_augmenter(config, dataset=plain, backend=ScriptedBackend())
    with pytest.raises(FileNotFoundError, match=CONFIG_NAME):
        GPT3MixConfig.from_pretrained(tmp_path)
    (tmp_path / CONFIG_NAME).write_text(json.dumps({**config.to_dict(), "format_version": 99}))
    with pytest.raises(ValueError, match="upgrade gpt3mix_hf"):
        GPT3MixConfig.from_pretrained(tmp_path)
    # One schema: a key it does not define is refused, not silently kept or dropped.
    for section, key in (("augmenter", "kk"), ("data", "splitt"), ("run", "batch")):
        values = config.to_dict()
        values[section] = {**values[section], key: 1}
        with pytest.raises(ValueError, match=rf"`{section}` has keys \['{key}'\]"):
            GPT3MixConfig.from_dict(values)
    with pytest.raises(ValueError, match="does not define"):
        GPT3MixConfig.from_augmenter(augmenter, data={"dataset": "sst2", "sample_per_clas": 3})
    (tmp_path / CONFIG_NAME).write_text(json.dumps(config.to_dict())[:200])
    with pytest.raises(ValueError, match="cut off"):
        GPT3MixConfig.from_pretrained(tmp_path)
    with pytest.raises(ValueError, match="takes a folder"):
        config.save_pretrained(tmp_path / CONFIG_NAME)


def test_credentials_never_reach_the_file(tmp_path):
    fake = "hf_" + "a" * 34
    with pytest.raises(ValueError, match="credential"):
        check_no_secrets({"augmenter": {"backend": {"api_key": "secret-value"}}})
    with pytest.raises(ValueError, match="password"):
        check_no_secrets({"augmenter": {"backend": {"base_url": "https://user:pa55word@llm.example.com/v1"}}})
    check_no_secrets({"base_url": "https://llm.example.com/v1"})
    config = GPT3MixConfig.from_augmenter(GPT3MixAugmenter(ScriptedBackend(), _toy()))
    config.backend = {"backend": "openai", "base_url": fake}
    with pytest.raises(ValueError, match="access token") as error:
        config.save_pretrained(tmp_path)
    assert fake not in str(error.value)
    assert not (tmp_path / CONFIG_NAME).exists()
    # Counting fields that merely contain the word are fine.
    check_no_secrets({"sampling": {"max_new_tokens": 64}, "generated_tokens": 10, "api_key": None})


def test_debiased_settings_are_recorded_and_rebuild_the_same_rows(tmp_path, toy_sentiment):
    augmenter = GPT3MixAugmenter(ScriptedBackend(), toy_sentiment, TaskSpec.from_preset("sst2"), ratio=2, seed=2,
                                 label_mode="debiased", debias_orders=1, debias_prior_rows=4)
    synthetic = augmenter.augment()
    config = GPT3MixConfig.from_augmenter(augmenter, toy_sentiment)
    assert (config.augmenter.debias_orders, config.augmenter.debias_prior_rows) == (1, 4)
    config.save_pretrained(tmp_path)
    written = json.loads((tmp_path / CONFIG_NAME).read_text())["augmenter"]
    assert (written["label_mode"], written["debias_orders"], written["debias_prior_rows"]) == ("debiased", 1, 4)
    rebuilt = make_augmenter(tmp_path, dataset=toy_sentiment, backend=ScriptedBackend())
    assert rebuilt.config == augmenter.config
    assert rebuilt.augment().to_list() == synthetic.to_list()


def test_provenance_can_be_given_as_augmenter_path_or_dict(tmp_path, toy_sentiment):
    augmenter = GPT3MixAugmenter(ScriptedBackend(), toy_sentiment, seed=3)
    augmenter.augment()
    config = as_config(augmenter)
    assert config.augmenter.seed == 3 and config.report.to_dict() == augmenter.report.to_dict()
    config.save_pretrained(tmp_path)
    assert as_config(tmp_path) == as_config(tmp_path / CONFIG_NAME) == as_config(config.to_dict()) == config
    assert as_config(None) is None
    with pytest.raises(TypeError, match="gpt3mix_config"):
        as_config(42)


def test_the_report_section_reads_back_typed(toy_sentiment):
    augmenter = GPT3MixAugmenter(ScriptedBackend(), toy_sentiment, seed=3)
    augmenter.augment(batch_size=3)
    values = json.loads(json.dumps(as_config(augmenter).to_dict()))
    report = GPT3MixConfig.from_dict(values).report
    assert isinstance(report, AugmentationReport) and report.to_dict() == augmenter.report.to_dict()
    assert report.failures == []  # failures.jsonl holds them
    # The rates are derived again from the counts, not read.
    values["report"]["parse_failure_rate"] = 0.5
    assert GPT3MixConfig.from_dict(values).report.parse_failure_rate == augmenter.report.parse_failure_rate
    with pytest.raises(ValueError, match=r"`report` has keys \['rows_writen'\]"):
        GPT3MixConfig.from_dict({**values, "report": {**values["report"], "rows_writen": 3}})
    with pytest.raises(ValueError, match="`report` holds a value of the wrong kind"):
        GPT3MixConfig.from_dict({**values, "report": {**values["report"], "rows_written": "3"}})


def test_an_augmenter_given_as_provenance_records_how_augment_ran(toy_sentiment, tmp_path):
    augmenter = GPT3MixAugmenter(ScriptedBackend(), toy_sentiment, seed=3)
    augmenter.augment(batch_size=3)
    config = as_config(augmenter)
    assert (config.run.map_batch_size, config.run.num_proc) == (3, None)  # not augment's defaults
    assert "map_batch_size" not in config.to_dict()["report"]  # recorded once, in the run section
    assert GPT3MixConfig.from_augmenter(augmenter, map_batch_size=5).run.map_batch_size == 5  # as told
    # Made from rows in memory, the file says nothing of where they came from: the cards say how to regenerate.
    assert config.data.dataset is None
    augmenter.augment()  # augment()'s default batch, recorded as such
    assert as_config(augmenter).run.map_batch_size == DEFAULT_MAP_BATCH_SIZE == 64
    # With more decoding slots than that (a GPU's 128), a default batch fills them.
    augmenter.backend.batch_size = 128
    augmenter.augment()
    assert augmenter.report.map_batch_size == as_config(augmenter).run.map_batch_size == 128
    # A run section without the field (edited by hand: every version writes it) reads as augment()'s old default.
    values = as_config(augmenter).to_dict()
    values["run"].pop("map_batch_size")
    assert GPT3MixConfig.from_dict(values).run.map_batch_size == 16
    synthetic = augmenter.augment(batch_size=3)
    BertConfig(id2label={0: "negative", 1: "positive"}).save_pretrained(tmp_path / "model")  # all a card reads
    text = build_dataset_card(synthetic, "me/x", config).text
    assert 'regenerate("gpt3mix_config.json", dataset=real_rows)' in text and "augment --config" not in text
    text = model_card_from_folder(tmp_path / "model", model_id="me/m", provenance=config).text
    assert 'regenerate("gpt3mix_config.json", dataset=real_rows)' in text and "augment --config" not in text


@pytest.mark.slow
def test_regenerates_the_embedded_default_lm_byte_for_byte(tmp_path, data_dir):
    # Two real rows, one attempt each: short, and every generation (kept or failed) must come back the same.
    train = _sst2_sample(data_dir, per_class=1, seed=3)
    backend = TransformersBackend.from_pretrained("smollm2", batch_size=4, dtype="float32")
    augmenter = GPT3MixAugmenter(backend, train, TaskSpec.from_preset("sst2"), seed=0,
                                 sampling=SamplingConfig(max_new_tokens=20), max_attempts=1)
    first = augmenter.augment(batch_size=4)
    data = _data_section(data_dir, per_class=1, seed=3)
    GPT3MixConfig.from_augmenter(augmenter, train, data=data, map_batch_size=4).save_pretrained(tmp_path)

    again = make_augmenter(tmp_path / CONFIG_NAME)
    second = again.augment(batch_size=4)
    first.to_parquet(tmp_path / "first.parquet")
    second.to_parquet(tmp_path / "second.parquet")
    assert (tmp_path / "first.parquet").read_bytes() == (tmp_path / "second.parquet").read_bytes()
    assert again.report.failures == augmenter.report.failures
    assert augmenter.report.rows_requested == 2


def test_a_secret_of_the_environment_never_reaches_the_file(tmp_path, monkeypatch):
    secret = "k3y-" + "q" * 30  # not token-shaped: only known as a secret because the environment holds it
    monkeypatch.setenv("SERVER_API_KEY", secret)
    config = GPT3MixConfig.from_augmenter(GPT3MixAugmenter(ScriptedBackend(), _toy()))
    config.backend = {"backend": "openai", "model": secret}
    with pytest.raises(ValueError, match=r"\$SERVER_API_KEY") as error:
        config.save_pretrained(tmp_path)
    assert secret not in str(error.value) and not (tmp_path / CONFIG_NAME).exists()


def test_data_and_run_sections_are_checked(toy_sentiment):
    values = GPT3MixConfig.from_augmenter(GPT3MixAugmenter(ScriptedBackend(), toy_sentiment)).to_dict()
    with pytest.raises(ValueError, match="remove the other"):
        DataSource(dataset="sst2", sample_fraction=0.1, sample_per_class=2)
    with pytest.raises(ValueError, match="map_batch_size"):
        GPT3MixConfig.from_dict({**values, "run": {"map_batch_size": 0}})


def test_a_data_source_of_a_users_file(tmp_path):
    rows = [{"review": "a fine film", "stars": "good"}, {"review": "a dull film", "stars": "bad"}] * 3
    path = tmp_path / "reviews.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    loaded = DataSource(dataset=str(path), text_column="review", label_column="stars", sample_per_class=2).load()
    assert loaded.features["stars"].names == ["bad", "good"] and len(loaded) == 4
    with pytest.raises(ValueError, match="has no column .text.*text_column"):
        DataSource(dataset=str(path), label_column="stars").load()


def test_regenerates_through_a_served_backend(tiny_lm_dir, toy_sentiment, tmp_path):
    from served_fixtures import CannedTransformersBackend, FakeOpenAIServer, TinyLMEngine

    from gpt3mix_hf.backends import OpenAIBackend, ServedConfig

    engine = TinyLMEngine(CannedTransformersBackend.from_pretrained(str(tiny_lm_dir), batch_size=1, dtype="float32"))
    with FakeOpenAIServer(engine) as server:
        backend = OpenAIBackend(server.url, config=ServedConfig(backoff_base=0.01, backoff_max=0.05))
        augmenter = GPT3MixAugmenter(backend, toy_sentiment, TaskSpec.from_preset("sst2"), seed=3,
                                     sampling=SamplingConfig(max_new_tokens=8), max_attempts=1)
        first = augmenter.augment(batch_size=4)
        GPT3MixConfig.from_augmenter(augmenter, toy_sentiment).save_pretrained(tmp_path)
        assert "127.0.0.1" not in (tmp_path / CONFIG_NAME).read_text()  # the file names the model, not the server
        with pytest.raises(ValueError, match="base_url="):
            regenerate(tmp_path, dataset=toy_sentiment)
        again = make_augmenter(tmp_path, dataset=toy_sentiment, base_url=server.url)
        second = again.augment(batch_size=4, load_from_cache_file=False)
    assert isinstance(again.backend, OpenAIBackend)
    assert augmenter.report.rows_written + augmenter.report.parse_failures > 0, "the server wrote nothing"
    assert again.report.failures == augmenter.report.failures
    everything = ["text", "label", "soft_labels", "generation", "failed_attempts"]
    assert second.select_columns(everything).to_list() == first.select_columns(everything).to_list()


def test_bfloat16_rows_regenerate_the_same_with_the_recorded_settings(format_lm_dir, caplog):
    # bf16's contract: the same rows for the same settings on the same kind of machine. The file records the
    # dtype (not "auto", which resolves per machine), the batch sizes, the processes and the machine.
    lines = [line.split(": ", 1)[1].rsplit(" (", 1)[0] for line in FORMAT_LINES]
    train = make_dataset(lines, [1, 0, 1, 0], ["negative", "positive"])
    backend = TransformersBackend.from_pretrained(str(format_lm_dir), dtype="bfloat16", batch_size=3)
    augmenter = GPT3MixAugmenter(backend, train, TaskSpec.from_preset("sst2"), ratio=2, seed=3,
                                 sampling=SamplingConfig(max_new_tokens=12))
    synthetic = augmenter.augment(batch_size=3, load_from_cache_file=False)
    assert len(synthetic) >= 4, augmenter.report.failures
    config = GPT3MixConfig.from_augmenter(augmenter, train, map_batch_size=3)
    assert config.backend["dtype"] == "bfloat16"
    assert config.backend["score_dtype"] == "float32"
    assert (config.run.map_batch_size, config.run.generation_batch_size) == (3, 3)
    assert config.run.machine == machine_kind("cpu")
    again = regenerate(config, dataset=train)
    assert again.to_list() == synthetic.to_list()
    # Elsewhere, regeneration warns that bf16 rows may differ there.
    config.run.machine = "cuda: another GPU"
    with caplog.at_level(logging.WARNING):
        make_augmenter(config, dataset=train, backend=backend)
    assert "same kind of machine only" in caplog.text


def test_float32_rows_elsewhere_warn_and_a_gpu_makes_them_in_one_process(format_lm_dir, toy_sentiment, caplog,
                                                                        monkeypatch):
    backend = TransformersBackend.from_pretrained(str(format_lm_dir), dtype="float32", device="cpu", batch_size=2)
    augmenter = GPT3MixAugmenter(backend, toy_sentiment, TaskSpec.from_preset("sst2"), seed=3, max_attempts=2,
                                 sampling=SamplingConfig(max_new_tokens=12))
    synthetic = augmenter.augment(batch_size=3, num_proc=2, load_from_cache_file=False)
    config = GPT3MixConfig.from_augmenter(augmenter, toy_sentiment)
    assert config.run.num_proc == 2 and config.backend["dtype"] == "float32"
    # float32 rows do not depend on the batching, but another kind of device rounds otherwise: said.
    config.run.machine = "cuda: another GPU"
    with caplog.at_level(logging.WARNING):
        make_augmenter(config, dataset=toy_sentiment, backend=backend)
    assert "round-off may move a sampled token" in caplog.text
    # With the model on a GPU, the recorded worker processes could not use it: one process makes the same rows.
    monkeypatch.setattr(TransformersBackend, "uses_cuda", property(lambda self: True))
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        again = regenerate(config, dataset=toy_sentiment)
    assert "made again in one process" in caplog.text
    assert again.to_list() == synthetic.to_list()
    # Judged by the backend the rows are made with, whatever the file records of the device: one on a GPU warns.
    config.run.machine = machine_kind("cpu")
    on_a_gpu = ScriptedBackend()
    on_a_gpu.machine = "cuda: a GPU"
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        make_augmenter(config, dataset=toy_sentiment, backend=on_a_gpu)
    assert "made again on cuda: a GPU" in caplog.text


def test_older_formats_are_upgraded_or_refused(toy_sentiment, tmp_path):
    from gpt3mix_hf.provenance import FORMAT_VERSION

    augmenter = GPT3MixAugmenter(ScriptedBackend(), toy_sentiment, seed=2, keep_prompt=True, label_mode="debiased",
                                 debias_prior_rows=4)
    config = GPT3MixConfig.from_augmenter(augmenter, toy_sentiment)
    values = config.to_dict()
    assert values["format_version"] == FORMAT_VERSION == 3
    # Format 2: one `augmenter` section with the LM, the task, sampling and the columns; keep_prompt under `run`.
    settings = dict(values["augmenter"])
    run = {**values["run"], "keep_prompt": settings.pop("keep_prompt")}
    old = {"format": "gpt3mix_config", "format_version": 2, "data": values["data"], "run": run,
           "augmenter": {**settings, "backend": values["backend"], **values["task"], "sampling": values["sampling"],
                         "text_column": "text", "label_column": "label"},
           "report": None, "versions": values["versions"]}
    upgraded = GPT3MixConfig.from_dict(old)
    assert upgraded.augmenter == config.augmenter and upgraded.task == config.task
    assert upgraded.backend == config.backend and upgraded.data == config.data
    # A file of the first release (no format_version) was made under other rules: refused, saying which version.
    del old["format_version"]
    (tmp_path / CONFIG_NAME).write_text(json.dumps(old))
    with pytest.raises(ValueError, match="older rules.*gpt3mix_hf"):
        GPT3MixConfig.from_pretrained(tmp_path)


def test_a_run_a_provenance_file_cannot_describe_is_refused(toy_sentiment):
    # regenerate() augments the recorded pool whole: a part of it, another pool or other rows would come back
    # as other rows, with the hash check passing.
    augmenter = GPT3MixAugmenter(ScriptedBackend(), toy_sentiment, ratio=1, seed=3)
    augmenter.augment(toy_sentiment.select(range(2)))
    with pytest.raises(ValueError, match="other rows than the augmenter's whole pool"):
        GPT3MixConfig.from_augmenter(augmenter, toy_sentiment)
    augmenter.augment(pool=toy_sentiment.select(range(4)))
    with pytest.raises(ValueError, match="other rows than the augmenter's whole pool"):
        GPT3MixConfig.from_augmenter(augmenter)
    augmenter.augment()
    assert GPT3MixConfig.from_augmenter(augmenter, toy_sentiment).data.num_rows == len(toy_sentiment)
    with pytest.raises(ValueError, match=r"dataset \(2 rows\) is not the augmenter's pool \(6 rows\)"):
        GPT3MixConfig.from_augmenter(augmenter, toy_sentiment.select(range(2)))


def test_a_local_model_folder_is_known_by_its_weights(tmp_path, toy_sentiment, caplog):
    # The same path overwritten with other weights is another model: to the datasets cache and to the file.
    folder = build_tiny_lm(tmp_path / "lm", seed=0)
    first = TransformersBackend.from_pretrained(str(folder), dtype="float32")
    assert first.identity["weights"]["source"] == "local"
    before = Hasher.hash(GPT3MixAugmenter(first, toy_sentiment))
    build_tiny_lm(tmp_path / "lm", seed=1)
    second = TransformersBackend.from_pretrained(str(folder), dtype="float32")
    assert second.identity["weights"]["sha256"] != first.identity["weights"]["sha256"]
    assert Hasher.hash(GPT3MixAugmenter(second, toy_sentiment)) != before
    with caplog.at_level("WARNING"):
        TransformersBackend.from_identity(first.identity)
    assert any("folder was overwritten" in record.getMessage() for record in caplog.records)
