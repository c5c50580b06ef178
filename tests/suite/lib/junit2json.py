#!/usr/bin/python3
# junit2json.py REPORT.xml - a JUnit report read back with xml.etree, printed
# as JSON for tests/suite/reports.test.lua: what a CI server parsing the file
# would see (the attributes, each result element and the text, unescaped).
import json
import sys
import xml.etree.ElementTree as ET


def result(case):
    for tag in ("failure", "error", "skipped"):
        el = case.find(tag)
        if el is not None:
            return {"tag": tag, "attrs": dict(el.attrib), "text": el.text or ""}
    return None


def text_of(el, tag):
    sub = el.find(tag)
    return None if sub is None else (sub.text or "")


root = ET.parse(sys.argv[1]).getroot()
out = {"tag": root.tag, "attrs": dict(root.attrib), "suites": []}
for suite in root.findall("testsuite"):
    cases = []
    for case in suite.findall("testcase"):
        cases.append({"attrs": dict(case.attrib), "result": result(case),
                      "system_out": text_of(case, "system-out")})
    out["suites"].append({"attrs": dict(suite.attrib), "cases": cases,
                          "system_out": text_of(suite, "system-out")})
json.dump(out, sys.stdout)
