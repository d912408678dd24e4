"""The worker's next-step policy: CLIP batches gathered briefly, served between VLM tokens."""

from npu_worker.batching import Next, WorkState, next_step


def state(
    images: int = 0,
    text_only: bool = False,
    waited: float = 0.0,
    generating: bool = False,
    queued: int = 0,
    encoder_idle: float = float("inf"),
    last_batch: int = 8,
) -> WorkState:
    return WorkState(images, text_only, waited, encoder_idle, last_batch, generating, queued)


def test_idle_when_nothing_waits() -> None:
    assert next_step(state(), 8, 0.005).action == Next.IDLE


def test_a_full_batch_runs_at_once() -> None:
    assert next_step(state(images=8), 8, 0.005).action == Next.CLIP


def test_a_partial_batch_waits_for_more_then_runs() -> None:
    decision = next_step(state(images=3, waited=0.002), 8, 0.005)
    assert decision.action == Next.WAIT and abs(decision.wait_s - 0.003) < 1e-9
    assert next_step(state(images=3, waited=0.005), 8, 0.005).action == Next.CLIP


def test_a_partial_batch_waits_after_the_encoder_frees_even_if_it_waited_during_the_run() -> None:
    """Requests queued during a run wait batch_wait_s more for the clients that run just answered."""
    decision = next_step(state(images=3, waited=0.040, encoder_idle=0.001), 8, 0.005)
    assert decision.action == Next.WAIT and abs(decision.wait_s - 0.004) < 1e-9
    assert next_step(state(images=3, waited=0.040, encoder_idle=0.005), 8, 0.005).action == Next.CLIP
    assert next_step(state(images=8, waited=0.040, encoder_idle=0.0), 8, 0.005).action == Next.CLIP


def test_a_lone_request_after_a_long_idle_waits_only_its_own_window() -> None:
    decision = next_step(state(images=1, waited=0.001, encoder_idle=9.0), 8, 0.005)
    assert decision.action == Next.WAIT and abs(decision.wait_s - 0.004) < 1e-9


def test_a_lone_image_after_a_lone_batch_runs_at_once() -> None:
    """One client alone pays no wait; as soon as a batch had company, lone images wait again."""
    assert (
        next_step(state(images=1, waited=0.0, encoder_idle=0.002, last_batch=1), 8, 0.005).action == Next.CLIP
    )
    assert next_step(state(images=1, waited=0.0, last_batch=0), 8, 0.005).action == Next.CLIP  # the first
    assert (
        next_step(state(images=1, waited=0.0, encoder_idle=0.002, last_batch=2), 8, 0.005).action == Next.WAIT
    )
    assert (
        next_step(state(images=2, waited=0.0, encoder_idle=0.002, last_batch=1), 8, 0.005).action == Next.WAIT
    )


def test_batching_off_runs_every_image_at_once() -> None:
    assert next_step(state(images=1), 1, 0.005).action == Next.CLIP


def test_text_only_work_never_waits() -> None:
    assert next_step(state(text_only=True), 8, 0.005).action == Next.CLIP


def test_a_generation_keeps_streaming_while_a_batch_gathers() -> None:
    assert next_step(state(images=2, waited=0.001, generating=True), 8, 0.005).action == Next.TOKEN
    assert next_step(state(images=2, waited=0.006, generating=True), 8, 0.005).action == Next.CLIP


def test_clip_goes_before_starting_a_queued_generation() -> None:
    assert next_step(state(images=1, waited=0.001, queued=2), 8, 0.005).action == Next.WAIT
    assert next_step(state(queued=2), 8, 0.005).action == Next.START
    assert next_step(state(generating=True, queued=2), 8, 0.005).action == Next.TOKEN
