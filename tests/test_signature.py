"""Crash signatures without builds: frame normalisation, the similarity rule, and every
malformed or truncated report (tests/reports/) refused with a message naming what is missing."""

from __future__ import annotations

import pytest

from stresscoro import signature as sig
from stresscoro.signature import Frame, Signature

from conftest import TESTS
from test_cli import assert_usage_error, run

REPORTS = TESTS / "reports"


@pytest.mark.parametrize("raw, name", [
    ("stresscoro::targets::task<(stresscoro::targets::task_flaw)1>::reset()", "stresscoro::targets::task::reset"),
    ("mylib::task<int> mylib::make_task<int>(int)", "mylib::make_task"),
    ("std::__cxx11::basic_string<char>::_M_dispose[abi:cxx11]() [clone .isra.0]", "std::__cxx11::basic_string::_M_dispose"),
    ("mylib::job::finish() const [clone .cold]", "mylib::job::finish"),
    ("mylib::job::operator<(mylib::job const&) const", "mylib::job::operator<"),
    ("mylib::job::operator()(int) &&", "mylib::job::operator()"),
    ("(anonymous namespace)::run(int)::{lambda()#2}::operator()() const", "{anon}::run::{lambda}::operator()"),
    ("mylib::counted::~counted() noexcept", "mylib::counted::~counted"),
])
def test_function_names_lose_templates_parameters_tags_and_clones(raw, name):
    assert sig.normalize_name(raw) == name


@pytest.mark.parametrize("raw", [
    "std::__n4861::coroutine_handle<mylib::promise>::destroy() const /usr/include/c++/12/coroutine:246",
    "operator delete(void*) ../../../../src/libsanitizer/asan/asan_new_delete.cpp:152",
    "start_thread nptl/pthread_create.c:442",
    "mylib::answer(mylib::answer(int)::_Z6answeri.Frame*) [clone .actor] /src/mylib/a.cpp:7",
    "answer(int) (.resume) /src/mylib/a.cpp:7",
    "answer /src/mylib/a.cpp:7",  # the same clone, as GCC's symbolizer names it
    "stresscoro::driver<stresscoro_target>::do_resume(op_ctx const&, int) /x/stresscoro/driver.hpp:471",
    "stresscoro_target::make(int, int) /home/me/adapter.cpp:12",
    "operator() /tmp/out/copyable_task_asan_heap_use_after_free.cpp:19",
    "_FUN /x/include/stresscoro/replay.hpp:66",
    "main /src/app/main.cpp:3",
    "/usr/lib/x86_64-linux-gnu/libasan.so.8.0.0+0xb9f08",
])
def test_runtime_library_trampoline_and_driver_frames_are_dropped(raw):
    assert sig.normalize_frame(raw) is None


def test_library_frames_keep_three_fold_repeats_and_count_unsymbolized():
    raw = ["operator new(unsigned long) ../../src/libsanitizer/asan/asan_new_delete.cpp:95",
           "/opt/app/libmylib.so+0x1234",
           "mylib::chain::step() /src/mylib/chain.hpp:10",
           "mylib::chain::step() /src/mylib/chain.hpp:10",
           "step /src/mylib/chain.hpp:10",
           "mylib::chain::run() /src/mylib/chain.hpp:20",
           "mylib::pool::drain() /src/mylib/pool.hpp:5",
           "mylib::pool::~pool() /src/mylib/pool.hpp:9"]
    frames, missing = sig.library_frames(raw)
    assert [f.name for f in frames] == ["mylib::chain::step", "mylib::chain::run", "mylib::pool::drain"]
    assert frames[0].where == "chain.hpp:10"
    assert missing == 1


def _sig(kind: str, **stacks: list[str]) -> Signature:
    return Signature(kind=kind, stacks={k: tuple(Frame(n) for n in v) for k, v in stacks.items()})


RESET = ["lib::task::reset", "lib::task::~task"]


def test_equal_signatures_match_with_similarity_one():
    a = _sig("heap-use-after-free", access=RESET, free=["lib::task::reset", "lib::task::~task"],
             alloc=["lib::value_task"])
    c = sig.compare(a, a)
    assert c.matches and c.similarity == 1.0 and c.basis == "free"


def test_two_frames_shared_in_order_match_and_one_does_not():
    report = _sig("heap-use-after-free", free=["lib::a", "lib::b", "lib::c"])
    assert sig.matches(report, _sig("heap-use-after-free", free=["lib::x", "lib::a", "lib::c"]))
    assert not sig.matches(report, _sig("heap-use-after-free", free=["lib::c", "lib::b", "lib::a"]))


def test_a_close_string_match_is_close_indeed():
    report = _sig("heap-use-after-free", free=["mylib::detail::basic_task::reset_frame"])
    assert sig.matches(report, _sig("heap-use-after-free", free=["mylib::detail::basic_task2::reset_frame"]))
    # resume against reset: 0.87 alike, a different function.
    report = _sig("heap-use-after-free", free=["lib::task::resume", "lib::other"])
    assert not sig.matches(report, _sig("heap-use-after-free", free=["lib::task::reset", "lib::more"]))


def test_namespaces_left_out_by_one_symbolizer_still_match():
    report = _sig("heap-use-after-free", free=["value_task", "lib::task::reset"])
    assert sig.matches(report, _sig("heap-use-after-free", free=["lib::value_task", "task::reset"]))


def test_the_free_stack_decides_a_use_after_free_even_when_the_access_agrees():
    copy_bug = _sig("heap-use-after-free", access=RESET, free=["value_task", *RESET])
    final_bug = _sig("heap-use-after-free", access=RESET, free=["value_task", "lib::task::resume"])
    c = sig.compare(copy_bug, final_bug)
    assert not c.matches and c.basis == "free"
    assert c.differences() == ["free stack: report value_task > lib::task::reset > lib::task::~task, "
                               "finding value_task > lib::task::resume"]
    # An access misattributed by the optimiser does not hide the bug.
    o2 = _sig("heap-use-after-free", access=["lib::task::task"], free=["value_task", *RESET])
    assert sig.matches(o2, copy_bug) and not sig.matches(o2, final_bug)


def test_kinds_must_agree_within_a_family():
    uaf = _sig("heap-use-after-free", free=RESET)
    assert sig.matches(_sig("double-free", free=RESET), uaf)
    assert sig.compare(_sig("double-free", free=RESET), uaf).similarity == 0.75
    assert not sig.matches(_sig("leak", alloc=RESET), uaf)


def test_a_race_matches_with_its_two_stacks_in_either_order():
    report = _sig("data-race", access=["lib::shared::release", "lib::shared::~shared"],
                  previous=["lib::shared::observe"])
    swapped = _sig("data-race", access=["lib::shared::observe"],
                   previous=["lib::shared::release", "lib::shared::~shared"])
    assert sig.compare(report, swapped).similarity == 1.0
    other = _sig("data-race", access=["lib::shared::release", "lib::shared::~shared"],
                 previous=["lib::shared::reset"])
    assert not sig.matches(report, other)


def test_without_frames_on_either_side_the_kind_alone_decides():
    c = sig.compare(_sig("leak", alloc=["lib::value_task"]), _sig("leak"))
    assert c.matches and c.basis == "kind only"


def test_the_fingerprint_has_kind_and_names_but_no_address_file_or_line():
    s = Signature("heap-use-after-free", {"free": (Frame("lib::task::reset", "task.hpp:104"),),
                                          "access": (Frame("lib::task::~task", "task.hpp:78"),)})
    assert s.fingerprint() == "heap-use-after-free|access=lib::task::~task|free=lib::task::reset"


@pytest.mark.parametrize("name, words", [
    ("empty.txt", ["the report is empty"]),
    ("not-a-report.txt", ["no sanitizer report found", "ERROR: AddressSanitizer:"]),
    ("header-only.txt", ["header on line 2", "no stack frame", "truncated"]),
    ("cut-in-free-stack.txt", ["no SUMMARY line", "truncated", "/src/myl"]),
    ("tsan-no-summary.txt", ["no SUMMARY line", "WARNING: ThreadSanitizer: data race"]),
    ("kind-missing.txt", ["could not read the error kind", "line 1"]),
])
def test_malformed_and_truncated_reports_are_refused_by_name(name, words):
    with pytest.raises(sig.ReportError) as e:
        sig.parse((REPORTS / name).read_text())
    for w in words:
        assert w in str(e.value), str(e.value)
    for command in (["signature"], ["reproduce", "copyable-task", "--report"]):
        assert_usage_error(run(*command, REPORTS / name), "invalid report", name, *words)


def test_a_missing_report_file_and_a_missing_target_are_usage_errors(tmp_path):
    assert_usage_error(run("signature", tmp_path / "nope.txt"), "report file not found", "nope.txt")
    assert_usage_error(run("reproduce", "--report", tmp_path / "nope.txt", "task"),
                       "report file not found")
    report = tmp_path / "r.txt"
    report.write_text("==1==ERROR: AddressSanitizer: heap-use-after-free on address 0x1\n"
                      "    #0 0x1 in lib::f() /src/f.cpp:1\nSUMMARY: AddressSanitizer: x\n")
    assert_usage_error(run("reproduce", "--report", report), "no target", "--adapter FILE")
    assert_usage_error(run("reproduce", "--report", report, "no-such-target"), "unknown target")


def test_a_campaign_keeps_one_finding_per_crash_signature():
    """Two search keys (kind, first location) for one crash, as when one crash is reached
    through two code paths, become one finding: the shorter schedule's. Another crash, or
    leaks at two locations with no library frame, stay apart."""
    from stresscoro.oracle import Finding
    from stresscoro.runner import FoundBug, one_per_signature
    from stresscoro.schedule import Schedule, make, op

    stacks = {"access": ("#0 0x1 in lib::task::reset() /x/task.hpp:100",),
              "free": ("#0 0x2 in operator delete(void*) asan_new_delete.cpp:1",
                       "#1 0x3 in lib::task::~task() /x/task.hpp:90",)}
    short = Schedule("copyable-task", (make(0), op("copy", 0, 1)))
    long = Schedule("copyable-task", (make(0), op("copy", 0, 1), make(2)))

    def bug(kind, location, schedule, first, stacks=stacks):
        f = Finding(kind=kind, op_index=len(schedule), summary="", location=location, stacks=stacks)
        return FoundBug(f, schedule, first, 0.0, 0.0)

    same_crash = [bug("heap-use-after-free", "task.hpp:100", long, 1),
                  bug("heap-use-after-free", "task.hpp:101", short, 5)]
    kept = one_per_signature(same_crash)
    assert len(kept) == 1 and kept[0].schedule == short
    other = bug("heap-use-after-free", "task.hpp:7", short, 9,
                {"access": ("#0 0x9 in lib::task::resume() /x/task.hpp:7",)})
    assert len(one_per_signature(same_crash + [other])) == 2
    leaks = [bug("leak", "allocated by make", short, 1, {}),
             bug("leak", "allocated by make_from(await_it)", short, 2, {})]
    assert len(one_per_signature(leaks)) == 2
