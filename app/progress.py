"""Progress bars for a sync run (`loyalsync demo`, `loyalsync sync --once`).

One bar per account x stream. It fills with the share of the run's time span read so far (the
windows the runner planned), so the ETA follows the real, rate-limited pace: a stream held back by
its platform's request budget shows a longer ETA rather than a hopeful one.
"""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from app.wiring import App, JobSpec
from sync.runner import RunResult

__all__ = ["sync_with_progress"]

_STEPS = 1000  # the bar's resolution


class _RateColumn(ProgressColumn):
    """Records written per second since the stream started."""

    def render(self, task) -> Text:  # type: ignore[no-untyped-def]
        elapsed = task.elapsed or 0.0
        rate = task.fields.get("records", 0) / elapsed if elapsed > 0 else 0.0
        return Text(f"{rate:>7,.0f}/s", style="progress.data.speed")


async def sync_with_progress(app: App, jobs: list[JobSpec], console: Console) -> list[RunResult]:
    """Run `jobs` once (as `App.sync_once`) with a bar per job; the bars stay when done."""
    columns = (TextColumn("{task.description:<44}"), BarColumn(), TaskProgressColumn(),
               TextColumn("{task.fields[records]:>8} records"), _RateColumn(),
               TextColumn("{task.fields[pages]:>5} pages"), TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        tasks = {job.id: progress.add_task(job.id, total=_STEPS, records=0, pages=0) for job in jobs}

        def on_page(job: JobSpec, result: RunResult) -> None:
            progress.update(tasks[job.id], completed=round(result.covered * _STEPS), records=result.records,
                            pages=result.pages)

        results = await app.sync_once(jobs, on_page=on_page)
        for result in results:
            colour = {"ok": "green", "unavailable": "magenta"}.get(result.state, "red")
            progress.update(tasks[str(result.key)], completed=_STEPS if result.ok else None,
                            records=result.records, pages=result.pages,
                            description=f"{result.key} [{colour}]{result.state}[/]")
    return results
