"""The registry refuses what cannot work (a location, name or version; a registry that cannot
take the model; a store failing midway) in one line, before the data is read where it can."""

from __future__ import annotations

import pytest

from flows.registry import main as registry_main
from flows.train import train
from tasks.errors import AutoMLInputError
from tasks.registry import Registry
from tests.test_registry import _published

pytestmark = pytest.mark.usefixtures("prefect_harness")


def test_registry_locations_names_and_versions_that_cannot_work_are_one_line(tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(AutoMLInputError, match=r"registry .*afile' is a file"):
        Registry(str(tmp_path / "afile"), "m")
    with pytest.raises(AutoMLInputError, match=r"cannot open registry 'foo://x'"):
        Registry("foo://x", "m")
    reg = Registry(str(tmp_path / "reg"), "m")
    with pytest.raises(AutoMLInputError,
                       match=r"has no model 'm' \(it holds no models\); check --registry"):
        reg.resolve()
    reg.add(str(_published(tmp_path / "a", "first")))
    assert reg.resolve("v1") == reg.resolve(1) == reg.resolve("1")
    # A misspelt name or registry is an error, not an empty listing.
    for where, name, held in [(tmp_path / "reg", "n", "it holds m"),
                              (tmp_path / "elsewhere", "m", "it holds no models")]:
        assert registry_main(["--registry", str(where), "--name", name, "list"]) == 2
        error = capsys.readouterr().err.strip().splitlines()
        assert len(error) == 1 and f"has no model {name!r} ({held})" in error[0]
    with pytest.raises(AutoMLInputError, match=r"version 'abc': give a number such as 2"):
        reg.resolve("abc")
    pointer = tmp_path / "reg" / "m" / "champion.json"
    for text, words in [('{"version": ', "cannot be read"), ("{}", "cannot be read"),
                        ('{"version": 7}', r"names version 7, which is not there")]:
        pointer.write_text(text)
        with pytest.raises(AutoMLInputError, match=f"{words}.*rollback N"):
            reg.champion()
    # As the message says, rollback mends it.
    assert registry_main(["--registry", str(tmp_path / "reg"), "--name", "m", "rollback",
                          "1"]) == 0
    assert reg.champion() == 1


def test_the_default_model_name_is_the_target_made_name_safe():
    from flows._registry import model_name
    from tasks.settings import TrainSettings

    settings = TrainSettings(data="x", target="_churn flag", task="classification")
    assert model_name(settings) == "churn-flag"
    Registry("memory://names", model_name(settings))  # accepted


def test_a_registry_that_cannot_take_the_model_is_refused_before_the_data_is_read(tmp_path):
    """A registry under a file, an output inside a registry and a champion that cannot be
    loaded were found after the model was published: the run failed, --output replaced."""
    common = dict(data=str(tmp_path / "never-read.csv"), target="label",
                  task="classification", output=str(tmp_path / "out"))
    (tmp_path / "afile").write_text("x")
    with pytest.raises(AutoMLInputError, match=r"registry '.*afile/reg' is under '.*afile', "
                       r"which is a file; give a folder"):
        train(**common, registry=str(tmp_path / "afile" / "reg"))
    # Where nothing can be written, even by root (os.access said yes: found after publishing).
    with pytest.raises(AutoMLInputError, match=r"^registry '/proc/reg' cannot be written here "
                       r"\('/proc': .+\); give one you can write to$"):
        train(**common, registry="/proc/reg")
    with pytest.raises(AutoMLInputError, match=r"^output folder '/proc/out' is not writable "
                       r"\(.+\); choose another output$"):  # a parameter, not a flag
        train(**{**common, "output": "/proc/out"})
    reg = Registry(str(tmp_path / "reg"), "label")
    reg.set_champion(reg.add(str(_published(tmp_path / "a", "first"))))
    with pytest.raises(AutoMLInputError, match=r"output '.*v1' is inside the model registry "
                       r"folder '.*reg/label', whose versions only registering writes"):
        train(**{**common, "output": str(tmp_path / "reg" / "label" / "v1")})
    with pytest.raises(AutoMLInputError, match=r"output '.*runs' is inside '.*reg/label2', "
                       r"where registry '.*reg' keeps the versions of 'label2'"):
        train(**{**common, "output": str(tmp_path / "reg" / "label2" / "runs")},
              registry=str(tmp_path / "reg"), model_name="label2")
    with pytest.raises(AutoMLInputError, match=r"data file .*never-read.csv' does not "
                       r"exist"):  # beside the models, a results folder is fine
        train(**{**common, "output": str(tmp_path / "reg" / "runs")},
              registry=str(tmp_path / "reg"), model_name="label2")
    with pytest.raises(AutoMLInputError, match=r"^manifest.json of label v1 of registry .*reg "
                       r"is not valid JSON"):
        train(**common, registry=str(tmp_path / "reg"))
    assert not (tmp_path / "out").exists()


def test_a_store_failing_while_registering_says_the_model_was_published():
    from flows._registry import registering

    with pytest.raises(RuntimeError, match=r"^the model was published to /r/run1, but "
                       r"registering it failed \(OSError: \[Errno 28\] No space left"):
        with registering("/r/run1"):
            raise OSError(28, "No space left on device")
