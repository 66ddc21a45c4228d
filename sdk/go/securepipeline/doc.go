// AWS CodePipeline/CodeBuild pipelines that are secure by construction.
package securepipeline
