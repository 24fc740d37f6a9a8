"""How each kind's rows become tidy facts: one INSERT per kind (and one per import profile's
results, by its metrics), run by ingest over the students a publish touched (`affected`).

Every derivation writes rows of (student_key, metric_id, period_start, value, denominator,
batch_id) and takes the students' groups from `students` as they stand: ciboard.ingest then
dates the groups of district students by their effective-dated records.
"""

from ciboard.profiles import ImportProfile
from ciboard.warehouse import FACTS_ORDER, STUDENT_YEAR_SUMS

STUDENT_COLUMNS = (
    "s.student_key, s.vendor_id, s.school_id, s.grade, s.race_ethnicity, s.gender,"
    " s.econ_disadvantaged, s.english_learner, s.special_education, s.baseline_band"
)


def _facts_from(select_metric_rows: str) -> str:
    """Insert facts from rows (student_key, metric_id, period_start, value, denominator, batch_id)."""
    return f"""insert into facts
        select r.metric_id, r.period_start, {STUDENT_COLUMNS}, r.value, r.denominator, r.batch_id
        from ({select_metric_rows}) as r
        inner join students as s on s.student_key = r.student_key
        order by {FACTS_ORDER}"""


DERIVATIONS = {
    "sessions": _facts_from(
        """
        with mine as (
            select * from sessions where student_key in (select student_key from affected)
        ),
        weekly as (
            select
                student_key,
                date_trunc('week', session_date)::date as period_start,
                count(*) as scheduled,
                count(*) filter (where attended_minutes > 0) as attended,
                sum(attended_minutes) as minutes,
                count(*) filter (where attended_minutes >= 30) as full_sessions,
                max(batch_id) as batch_id
            from mine
            group by all
        ),
        -- The most frequent tutor over all of a student's attended sessions; ties go to the
        -- lowest tutor id so that the answer does not depend on row order.
        tutor_counts as (
            select student_key, tutor_id, count(*) as sessions
            from mine where attended_minutes > 0
            group by all
        ),
        main_tutor as (
            select student_key, tutor_id
            from (
                select *, row_number() over (partition by student_key order by sessions desc, tutor_id) as place
                from tutor_counts
            )
            where place = 1
        ),
        consistency as (
            select
                m.student_key,
                date_trunc('week', m.session_date)::date as period_start,
                count(*) filter (where m.tutor_id = t.tutor_id) as with_main_tutor,
                count(*) as attended,
                max(m.batch_id) as batch_id
            from mine as m inner join main_tutor as t using (student_key)
            where m.attended_minutes > 0
            group by all
        )
        select student_key, 'tutoring_attendance_rate' as metric_id, period_start, attended::double as value,
               scheduled::double as denominator, batch_id from weekly
        union all
        select student_key, 'dosage_minutes', period_start, minutes, null, batch_id from weekly
        union all
        select student_key, 'dosage_met', period_start, (full_sessions >= 3)::int, null, batch_id from weekly
        union all
        select student_key, 'tutor_consistency', period_start, with_main_tutor, attended, batch_id from consistency
        """
    ),
    # Closed weeks (no days enrolled) carry no attendance to measure.
    "school_attendance": _facts_from(
        """
        select student_key, 'school_attendance_rate' as metric_id, week_start as period_start,
               days_present::double as value, days_enrolled::double as denominator, batch_id
        from school_attendance
        where student_key in (select student_key from affected) and days_enrolled > 0
        """
    ),
    "assessment": _facts_from(
        """
        with mine as (
            select a.*, date_trunc('week', a.test_date)::date as period_start, s.vendor_id
            from assessments as a inner join students as s using (student_key)
            where a.student_key in (select student_key from affected)
        ),
        -- The growth threshold is the SGP line of the vendor's rate card in force on the test date.
        thresholds as (
            select m.student_key, m.window_name, m.school_year, min(c.threshold) as threshold
            from mine as m
            inner join contracts as c
                on c.vendor_id = m.vendor_id and c.payment_metric in ('sgp', 'met_growth_target')
                and m.test_date between c.starts_on and c.ends_on
                and (c.school_year is null or c.school_year = m.school_year)
            group by all
        )
        select student_key, 'scaled_score' as metric_id, period_start, scaled_score as value,
               null as denominator, batch_id from mine
        union all
        select student_key, 'sgp', period_start, sgp, null, batch_id from mine where sgp is not null
        union all
        select student_key, 'proficient', period_start, proficient::int, null, batch_id from mine
        union all
        select m.student_key, 'met_growth_target', m.period_start,
               (m.sgp >= coalesce(t.threshold, $growth_target))::int, null, m.batch_id
        from mine as m left join thresholds as t using (student_key, window_name, school_year)
        where m.sgp is not null
        """
    ),
    "survey": _facts_from(
        """
        select student_key, item as metric_id, date_trunc('week', response_date)::date as period_start,
               avg(score) as value, null as denominator, max(batch_id) as batch_id
        from survey_responses
        where student_key in (select student_key from affected)
        group by all
        """
    ),
}

def profile_derivation(profile: ImportProfile) -> str:
    """The facts of a profile's results, as its metrics say: one test per student, window and
    subject (the preferred test first, then the latest); growth from the `from_window` test to
    the later window's, against the growth the earlier row expects or a fixed gain."""
    kind = profile.results.kind.replace("'", "''")
    parts = []
    for m in profile.metrics:
        metric = "concat_ws('_', '" + profile.metric_prefix + "', nullif(later.subject_id, ''), '" + m.suffix + "')"
        score = f"later.scores['{m.of}']"
        if m.derive == "growth":
            if m.target is not None:
                target = repr(float(m.target))
            else:
                target = "case later.window_name " + " ".join(
                    f"when '{window}' then earlier.scores['{m.suffix}:{window}']" for window in m.target_columns
                ) + " end"
            parts.append(
                f"""select later.student_key, {metric} as metric_id, later.period_start,
                    ({score} - earlier.scores['{m.of}'] >= {target})::double as value,
                    null::double as denominator, later.batch_id
                from one as later
                inner join one as earlier on earlier.student_key = later.student_key
                    and earlier.subject_id = later.subject_id and earlier.school_year = later.school_year
                    and earlier.window_name = '{m.from_window}'
                where later.preferred and earlier.preferred and later.window_name <> '{m.from_window}'
                  and {score} is not null and earlier.scores['{m.of}'] is not null and ({target}) is not null"""
            )
        else:
            value = f"({score} >= {float(m.threshold)!r})::double" if m.derive == "at_least" else f"{score}"
            parts.append(
                f"""select later.student_key, {metric} as metric_id, later.period_start, {value} as value,
                    null::double as denominator, later.batch_id
                from one as later where {score} is not null"""
            )
    body = "\nunion all\n".join(parts)
    return _facts_from(
        f"""with one as (
            -- A window's values are dated at its first week: the term (or the window) says which.
            select r.*, w.period_start
            from profile_results as r
            inner join (
                select school_year, window_name, min(week_start) as period_start from calendar_weeks group by all
            ) as w using (school_year, window_name)
            where r.kind = '{kind}' and r.student_key in (select student_key from affected)
            qualify row_number() over (
                partition by student_key, school_year, window_name, subject_id
                order by preferred desc, test_date desc, test_id desc) = 1
        )
        {body}"""
    )


STUDENT_DOSAGE = """
insert into student_dosage
select student_key, count(*) as weeks, sum(value)::integer as weeks_met, avg(value) as share_met
from facts
where metric_id = 'dosage_met' and student_key in (select student_key from affected)
group by student_key
"""


def refresh_student_year_sums(con, only: str | None = None) -> None:
    """Writes student_year_sums again from the facts: of the students and metrics the query
    `only` selects (student_key, metric_id), or of all."""
    if only is None:
        con.execute("delete from student_year_sums")
        con.execute(f"insert into student_year_sums {STUDENT_YEAR_SUMS.format(only='')} order by 1, 2, 3")
        return
    con.execute(
        f"""delete from student_year_sums as s using ({only}) as o
        where o.student_key = s.student_key and o.metric_id = s.metric_id"""
    )
    of_those = f"semi join ({only}) as o on o.student_key = f.student_key and o.metric_id = f.metric_id"
    con.execute(f"insert into student_year_sums {STUDENT_YEAR_SUMS.format(only=of_those)} order by 1, 2, 3")
