"""`flask --app run crm ...`: init, seed, worker, cron, jobs, i18n."""
from __future__ import annotations

import json
import sys
import uuid

import click
from flask import Flask, current_app
from flask.cli import AppGroup

crm = AppGroup("crm", help="客户关系管理后台命令 / CRM back office commands.")


def _print_init(result) -> None:
    click.echo(f"种子数据 / seeds: {json.dumps(result.seeds.as_dict())}")
    if result.admin_password:
        click.echo("=" * 60)
        click.echo("已创建管理员 / admin user created")
        click.echo(f"  用户名 / username: admin")
        click.echo(f"  密码 / password:   {result.admin_password}")
        click.echo("  此密码只显示这一次 / this password is shown only once")
        click.echo("=" * 60)
    elif result.admin_created:
        click.echo("已创建管理员 admin（密码取自 CRM_ADMIN_PASSWORD） / admin created from CRM_ADMIN_PASSWORD")


@crm.command("init")
def init_command() -> None:
    """迁移数据库、同步权限、加载种子、创建管理员 / migrate, sync permissions, seed, create admin."""
    from app.services.bootstrap import initialise
    from app.services.seeding import SeedError

    try:
        _print_init(initialise())
    except (SeedError, ValueError) as exc:
        click.echo(str(exc), err=True)
        sys.exit(2)


@crm.command("seed")
@click.option("--demo", "demo", type=int, default=0, help="再生成 N 个演示客户 / also generate N demo customers")
def seed_command(demo: int) -> None:
    """加载 seeds/ 下的种子数据（可重复执行） / load seeds/ (idempotent)."""
    from app.services.seeding import SeedError, load_seeds

    try:
        report = load_seeds()
    except SeedError as exc:
        click.echo("种子数据有误，未写入任何内容 / seed files have errors, nothing was written:", err=True)
        for p in exc.problems:
            click.echo(f"  {p}", err=True)
        sys.exit(2)
    click.echo(f"种子数据 / seeds: {json.dumps(report.as_dict())}")
    if demo:
        from app.services.demo import load_demo

        click.echo(f"演示数据 / demo: {json.dumps(load_demo(demo), ensure_ascii=False)}")


@crm.command("worker")
@click.option("--queues", default=None, help="逗号分隔的队列 / comma-separated queues")
@click.option("--burst", is_flag=True, help="处理完队列即退出 / exit when the queues are empty")
@click.option("--name", default=None)
def worker_command(queues: str | None, burst: bool, name: str | None) -> None:
    """启动 RQ 工作进程（带应用上下文、重试调度） / run an RQ worker with the app context."""
    if not current_app.config.get("REDIS_URL"):
        click.echo("未设置 REDIS_URL：任务在 Web 进程内执行，无需工作进程 / REDIS_URL is not set: "
                   "jobs run in-process and need no worker", err=True)
        sys.exit(2)
    from rq import Worker

    from app.jobs.queue import get_queue, get_redis

    names = queues.split(",") if queues else current_app.config["RQ_QUEUES"]
    worker = Worker([get_queue(n) for n in names], connection=get_redis(), name=name)
    worker.work(with_scheduler=True, burst=burst)


@crm.command("cron")
def cron_command() -> None:
    """启动定时任务调度器（RQ cron），可与工作进程分开部署 / run RQ's cron scheduler for periodic jobs."""
    if not current_app.config.get("REDIS_URL"):
        click.echo("未设置 REDIS_URL：定时任务由 python run.py 在进程内执行 / REDIS_URL is not set: "
                   "python run.py runs periodic jobs in-process", err=True)
        sys.exit(2)
    from rq.cron import CronScheduler

    from app.jobs import PERIODIC
    from app.jobs.queue import get_redis
    from app.jobs.runner import run_periodic

    scheduler = CronScheduler(connection=get_redis())
    for job in PERIODIC.values():
        scheduler.register(run_periodic, queue_name="default", args=(job.name,), interval=job.interval,
                           name=job.name)
    scheduler.start()


jobs = AppGroup("jobs", help="定时任务 / periodic jobs.")
crm.add_command(jobs)


@jobs.command("list")
def jobs_list() -> None:
    """列出所有定时任务 / list every periodic job."""
    from app.extensions import db
    from app.jobs import PERIODIC
    from app.models import JobRun

    for job in PERIODIC.values():
        last = db.session.query(JobRun).filter_by(name=job.func).order_by(JobRun.started_at.desc()).first()
        last_s = f"{last.status} {last.started_at:%Y-%m-%d %H:%M:%S}" if last else "-"
        click.echo(f"{job.name:24} 每 {job.interval}s / every {job.interval}s  {job.description}  [last: {last_s}]")


@jobs.command("run")
@click.argument("name")
def jobs_run(name: str) -> None:
    """立即执行一次定时任务 / run one periodic job now, once."""
    from app.jobs import PERIODIC
    from app.jobs.runner import execute

    if name not in PERIODIC:
        click.echo(f"未知任务 '{name}'，可用：{', '.join(PERIODIC)} / unknown job '{name}'", err=True)
        sys.exit(2)
    result = execute(PERIODIC[name].func, f"manual-{uuid.uuid4().hex[:12]}", [], mode="manual")
    click.echo(json.dumps({"job": name, "result": result}, ensure_ascii=False, default=str))


@crm.command("export")
@click.argument("list_name", metavar="LIST")
@click.argument("out", type=click.Path(dir_okay=False, writable=True))
@click.option("--user", "username", default=None,
              help="按该用户的数据范围与脱敏导出（默认：system，全部数据，仍脱敏） / export as this user "
                   "(scope, hidden columns, masking, language); default: system (all rows, masked)")
@click.option("--filter", "filters", multiple=True,
              help="列表网址中的筛选与排序参数，如 '_flt_2_name=科技' 或整条列表网址，可重复 / the list URL's "
                   "filter and sort arguments (e.g. '_flt_2_name=科技', or the whole list URL); repeatable")
def export_command(list_name: str, out: str, username: str | None, filters: tuple[str, ...]) -> None:
    """导出列表到 OUT.xlsx 或 OUT.csv / export a list to OUT.xlsx or OUT.csv.

    \b
    LIST: customers 客户档案, contacts 联系人, interactions 互动记录, tasks 待办任务,
    followup_plans 跟进计划, tickets 服务工单, my_tickets 我的工单, service_records 客户服务记录,
    feedback 客户反馈, surveys 满意度回访, revisits 回访任务
    """
    from app.extensions import appbuilder
    from app.services.actor import system_user
    from app.services.export import ExportRefused, export_to_file, parse_args

    user = appbuilder.sm.find_user(username=username) if username else system_user()
    if username and (user is None or not user.active):
        click.echo(f"未知或已停用的用户 '{username}' / unknown or disabled user '{username}'", err=True)
        sys.exit(2)
    try:
        log = export_to_file(list_name, out, user, parse_args(filters))
    except ExportRefused as exc:
        click.echo(str(exc), err=True)
        sys.exit(2)
    click.echo(json.dumps({"list": list_name, "file": out, "rows": log.rows, "user": user.username,
                           "export_id": log.id}, ensure_ascii=False))


imports = AppGroup("import", help="导入 / import spreadsheets.")
crm.add_command(imports)


def _import_command(kind: str, help_text: str, update_keys: tuple[str, ...] = (), update_help: str = ""):
    """``flask crm import KIND FILE``: the same options and report for every kind."""
    def command(file: str, mode: str, dry_run: bool, sheet: str | None, maps: tuple[str, ...],
                template: str | None, username: str | None, as_json: bool, update_by: str | None = None) -> None:
        from app.extensions import appbuilder
        from app.services.actor import system_user
        from app.services.importer import acting_as, import_file

        user = appbuilder.sm.find_user(username=username) if username else system_user()
        if user is None:
            click.echo(f"未知用户 / unknown user: {username}", err=True)
            sys.exit(2)
        mapping = dict(m.split("=", 1) for m in maps if "=" in m)
        with acting_as(user):
            result = import_file(file, user, mode=mode, dry_run=dry_run, update_by=update_by, sheet=sheet,
                                 mapping=mapping, template=template, kind=kind)
        if as_json:
            click.echo(json.dumps(result, ensure_ascii=False, indent=1))
        else:
            click.echo(f"批次 / batch {result['batch']}: {result['status']}  读取 read {result['rows_total']}, "
                       f"有效 valid {result['rows_valid']}, 新增 created {result['rows_created']}, "
                       f"更新 updated {result['rows_updated']}, 拒绝 rejected {result['rows_rejected']}")
            for e in result["errors"]:
                click.echo(f"  第 {e['row']} 行 / row {e['row']} [{e['column']}] {e['value']!r}: {e['message']}")
        sys.exit(0 if result["status"] in ("done", "checked") else 1)

    command.__doc__ = help_text
    options = [
        click.argument("file", type=click.Path(exists=True, dir_okay=False)),
        click.option("--mode", type=click.Choice(["all", "valid"]), default="all", show_default=True,
                     help="all：有任何错误则不保存 / all-or-nothing; valid：只导入无误的行 / import the valid rows"),
        click.option("--dry-run", is_flag=True, help="只检查，不保存 / check only, save nothing"),
        *([click.option("--update-by", type=click.Choice(update_keys), default=None, help=update_help)]
          if update_keys else []),
        click.option("--sheet", default=None, help="工作表名称（默认第一个） / sheet name (default: the first)"),
        click.option("--map", "maps", multiple=True, metavar="表头=字段",
                     help="纠正列映射，字段为 - 表示忽略该列 / correct a column's mapping (HEADER=field, - ignores it)"),
        click.option("--template", default=None, help="已保存的映射模板 / a saved mapping template"),
        click.option("--user", "username", default=None, help="以该用户导入（默认 system） / import as this user"),
        click.option("--json", "as_json", is_flag=True, help="输出机器可读报告 / print the JSON report"),
    ]
    for option in reversed(options):
        command = option(command)
    return imports.command(kind)(command)


_import_command("customers", "从 .xlsx/.csv 导入客户 / import customers from an .xlsx or .csv file.",
                ("no", "credit_code"), "按客户编号(no)或信用代码更新已有客户 / update existing customers matched by "
                                       "customer no. or credit code")
_import_command("contacts", "从 .xlsx/.csv 导入联系人（按客户编号或客户名称归属客户） / import contacts from an .xlsx "
                            "or .csv file (customer by no. or name).",
                ("mobile",), "按手机更新该客户的已有联系人，空白单元格不改 / update the customer's existing contacts "
                             "matched by phone; blank cells keep their values")
_import_command("interactions", "从 .xlsx/.csv 导入互动记录（按客户编号或客户名称归属客户） / import interactions "
                                "(visits, calls) from an .xlsx or .csv file.")
_import_command("tickets", "从 .xlsx/.csv 导入服务工单（新建或已关闭的，按客户编号或客户名称归属客户） / import service "
                           "tickets, open or closed, from an .xlsx or .csv file (customer by no. or name).")


@imports.command("retry")
@click.argument("batch_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="输出机器可读报告 / print the JSON report")
def import_retry(batch_id: int, as_json: bool) -> None:
    """重新运行失败或工作进程已停止的导入批次 / run again a failed batch, or one whose worker died."""
    from app.extensions import db
    from app.models.importing import ImportBatch
    from app.services.importer import ImportRefused, acting_as, retry

    batch = db.session.get(ImportBatch, batch_id)
    if batch is None:
        click.echo(f"没有该批次 / no such batch: {batch_id}", err=True)
        sys.exit(2)
    try:
        with acting_as(batch.created_by):
            result = retry(batch, now=True)
    except ImportRefused as exc:
        click.echo(f"{exc} / status: {batch.status}", err=True)
        sys.exit(1)
    click.echo(json.dumps(result, ensure_ascii=False, indent=1) if as_json else
               f"批次 / batch {result['batch']}: {result['status']}  新增 created {result['rows_created']}, "
               f"更新 updated {result['rows_updated']}, 拒绝 rejected {result['rows_rejected']}")
    sys.exit(0 if result["status"] in ("done", "checked") else 1)


def init_app(app: Flask) -> None:
    app.cli.add_command(crm)


i18n = AppGroup("i18n", help="界面翻译 / UI translation catalogs.")
crm.add_command(i18n)
I18N_LOCALES = ("zh", "en")


def _pybabel(*args: str) -> None:
    """Run a pybabel command in-process, from the repository root (so .po locations stay relative)."""
    import contextlib
    from pathlib import Path

    from babel.messages.frontend import CommandLineInterface

    with contextlib.chdir(Path(__file__).resolve().parents[1]):
        CommandLineInterface().run(["pybabel", "-q", *args])


@i18n.command("extract")
def i18n_extract() -> None:
    """提取 app/ 与 templates/ 的待译文字并更新 zh、en 目录 / extract messages, update zh and en catalogs."""
    _pybabel("extract", "-F", "app/translations/babel.cfg", "-k", "_l", "-k", "lazy_gettext",
             "--add-comments=TRANSLATORS:", "--sort-by-file", "--project=crm", "-o", "app/translations/messages.pot",
             "app", "templates")
    for locale in I18N_LOCALES:
        _pybabel("update", "-i", "app/translations/messages.pot", "-d", "app/translations", "-l", locale,
                 "--no-fuzzy-matching", "--ignore-obsolete", "--init-missing")
    click.echo("已更新 / updated app/translations/messages.pot and the zh, en catalogs")


@i18n.command("compile")
def i18n_compile() -> None:
    """把 .po 编译为 .mo / compile the .po catalogs into .mo files."""
    _pybabel("compile", "-d", "app/translations", "--statistics")
